import { parseArgs } from 'node:util';

export type BenchProtocol = 'socketio' | 'ws';
export type BenchParser = 'msgpack' | 'json';
export type BenchTransport = 'polling' | 'websocket';

export interface RedisTarget {
  host: string;
  port: number;
}

export interface BenchOptions {
  url: string;
  path: string;
  clients: number;
  rooms: number;
  rate: number;
  durationS: number;
  publishers: number;
  parser: BenchParser;
  transports: BenchTransport[];
  roomQuery: boolean;
  roomKey: string;
  protocol: BenchProtocol;
  event: string;
  workers: number;
  rampConcurrency: number;
  /**
   * New connections per second over all workers; 0 opens them as fast as rampConcurrency lets.
   * A paced ramp keeps the handshakes' queueing (and so their timeouts) off a saturated machine.
   */
  rampRate?: number;
  payloadBytes: number;
  spreadSources: boolean;
  pids: number[];
  metrics: string[];
  redis: RedisTarget[];
  redisPassword: string | undefined;
  /** ACL user of the Redis sampler (BENCH_REDIS_USERNAME); the default user when unset. */
  redisUsername?: string | undefined;
  out: string | undefined;
  maxLoss: number;
  maxErrors: number;
  drainTimeoutS: number;
  quiet: boolean;
  json: boolean;
}

/** Sockets one worker opens at most: the open-file hard limit here is 20000 per process. */
export const SOCKETS_PER_WORKER = 15000;
/** Publishes per second one publisher connection sends at most (the relay's default limit is 100/s). */
export const PUBLISHES_PER_PUBLISHER = 50;

export const BENCH_USAGE = `Usage: socketfleet bench --url URL [options]

Opens --clients Socket.IO clients against URL (through the gateway), joins them to --rooms rooms,
publishes --rate messages/s for --duration seconds and reports delivery, loss and latency.

  --url URL              gateway or server URL, e.g. http://127.0.0.1:8080 (required)
  --clients N            concurrent clients (default 1000)
  --rooms N              rooms; each client joins one, spread by a hash of its index (default 10)
  --rate N               publishes per second, all publishers together (default 100)
  --duration S           seconds of publishing (default 10)
  --publishers N         publisher connections (default ceil(rate / ${PUBLISHES_PER_PUBLISHER}))
  --parser P             msgpack | json, must match the server (default msgpack)
  --transports LIST      websocket | polling,websocket (default websocket)
  --room-query           append ?<room-key>=<room> to every handshake (room-affinity routing);
                         publisher j publishes to rooms j, j+P, ... and names room j mod R
  --room-key NAME        query parameter of --room-query (default room)
  --path PATH            Socket.IO path (default /socket.io)
  --protocol P           socketio | ws (raw WebSocket floor server) (default socketio)
  --event NAME           event the server emits to room members (default message)
  --workers N            client worker processes (default ceil(clients / ${SOCKETS_PER_WORKER}))
  --ramp-concurrency N   handshakes in flight per worker (default 100)
  --ramp-rate N          new connections per second over all workers (default 0: unpaced)
  --payload-bytes N      approximate JSON payload size (default 370)
  --no-spread            do not bind 127.X.Y.1 source addresses on loopback targets
  --pids LIST            server pids to sample CPU and memory from /proc (local runs)
  --metrics URL          a server /metrics URL to scrape CPU and memory from (repeatable)
  --redis LIST           host:port of Redis shards for byte counts (password: $BENCH_REDIS_PASSWORD)
  --out DIR              write result.json and report.html into DIR
  --max-loss F           fail (exit 1) when lost/expected deliveries exceeds F (default 0)
  --max-errors N         fail (exit 1) when errors exceed N (default 0)
  --drain-timeout S      seconds to wait for in-flight messages after publishing (default 10)
  --json                 print the result JSON on stdout instead of the summary
  --quiet                no progress lines
`;

export type ParseResult = { ok: true; options: BenchOptions } | { ok: false; error: string };

function int(name: string, raw: string | undefined, def: number, min: number): number | string {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    return `--${name} must be an integer >= ${min}, got "${raw}".`;
  return n;
}

function parseRedis(list: string): RedisTarget[] | string {
  const out: RedisTarget[] = [];
  for (const item of list.split(',').filter((s) => s.length > 0)) {
    const i = item.lastIndexOf(':');
    const port = Number(item.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      return `--redis expects host:port[,host:port...], got "${item}".`;
    }
    out.push({ host: item.slice(0, i), port });
  }
  return out;
}

export function parseBenchArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        path: { type: 'string' },
        clients: { type: 'string' },
        rooms: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        publishers: { type: 'string' },
        parser: { type: 'string' },
        transports: { type: 'string' },
        'room-query': { type: 'boolean' },
        'room-key': { type: 'string' },
        protocol: { type: 'string' },
        event: { type: 'string' },
        workers: { type: 'string' },
        'ramp-concurrency': { type: 'string' },
        'ramp-rate': { type: 'string' },
        'payload-bytes': { type: 'string' },
        'no-spread': { type: 'boolean' },
        pids: { type: 'string' },
        metrics: { type: 'string', multiple: true },
        redis: { type: 'string' },
        out: { type: 'string' },
        'max-loss': { type: 'string' },
        'max-errors': { type: 'string' },
        'drain-timeout': { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
    }));
  } catch (err) {
    return { ok: false, error: `${(err as Error).message}; see socketfleet bench --help.` };
  }
  if (values.url === undefined)
    return { ok: false, error: '--url is required, e.g. --url http://127.0.0.1:8080.' };
  try {
    new URL(values.url);
  } catch {
    return {
      ok: false,
      error: `--url must be an absolute URL such as http://127.0.0.1:8080, got "${values.url}".`,
    };
  }
  const nums: Record<string, number> = {};
  const rate = int('rate', values.rate, 100, 1);
  const specs: [string, string | undefined, number, number][] = [
    ['clients', values.clients, 1000, 1],
    ['rooms', values.rooms, 10, 1],
    ['rate', values.rate, 100, 1],
    ['duration', values.duration, 10, 1],
    [
      'publishers',
      values.publishers,
      typeof rate === 'number' ? Math.ceil(rate / PUBLISHES_PER_PUBLISHER) : 1,
      1,
    ],
    ['workers', values.workers, 0, 1],
    ['ramp-concurrency', values['ramp-concurrency'], 100, 1],
    ['ramp-rate', values['ramp-rate'], 0, 0],
    ['payload-bytes', values['payload-bytes'], 370, 100],
    ['max-errors', values['max-errors'], 0, 0],
    ['drain-timeout', values['drain-timeout'], 10, 0],
  ];
  for (const [name, raw, def, min] of specs) {
    const v = int(name, raw, def, min);
    if (typeof v === 'string') return { ok: false, error: v };
    nums[name] = v;
  }
  const clients = nums.clients!;
  const workers =
    values.workers === undefined
      ? Math.max(1, Math.ceil(clients / SOCKETS_PER_WORKER))
      : nums.workers!;
  if (Math.ceil(clients / workers) > SOCKETS_PER_WORKER) {
    return {
      ok: false,
      error: `--workers ${workers} would put more than ${SOCKETS_PER_WORKER} sockets in one process; use at least ${Math.ceil(clients / SOCKETS_PER_WORKER)}.`,
    };
  }
  const parser = values.parser ?? 'msgpack';
  if (parser !== 'msgpack' && parser !== 'json') {
    return { ok: false, error: `--parser must be msgpack or json, got "${parser}".` };
  }
  const protocol = values.protocol ?? 'socketio';
  if (protocol !== 'socketio' && protocol !== 'ws') {
    return { ok: false, error: `--protocol must be socketio or ws, got "${protocol}".` };
  }
  const transports = (values.transports ?? 'websocket').split(',').filter((s) => s.length > 0);
  if (transports.length === 0 || transports.some((t) => t !== 'polling' && t !== 'websocket')) {
    return {
      ok: false,
      error: `--transports must list polling and/or websocket, got "${values.transports ?? ''}".`,
    };
  }
  const maxLoss = values['max-loss'] === undefined ? 0 : Number(values['max-loss']);
  if (!Number.isFinite(maxLoss) || maxLoss < 0 || maxLoss > 1) {
    return {
      ok: false,
      error: `--max-loss must be a fraction between 0 and 1, got "${values['max-loss']}".`,
    };
  }
  const pids: number[] = [];
  for (const p of (values.pids ?? '').split(',').filter((s) => s.length > 0)) {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1)
      return {
        ok: false,
        error: `--pids expects a comma-separated list of process ids, got "${p}".`,
      };
    pids.push(n);
  }
  const redis = parseRedis(values.redis ?? '');
  if (typeof redis === 'string') return { ok: false, error: redis };
  const roomKey = values['room-key'] ?? 'room';
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(roomKey)) {
    return { ok: false, error: `--room-key must be a query parameter name, got "${roomKey}".` };
  }
  return {
    ok: true,
    options: {
      url: values.url,
      path: values.path ?? '/socket.io',
      clients,
      rooms: nums.rooms!,
      rate: nums.rate!,
      durationS: nums.duration!,
      publishers: nums.publishers!,
      parser,
      transports: transports as BenchTransport[],
      roomQuery: values['room-query'] ?? false,
      roomKey,
      protocol,
      event: values.event ?? 'message',
      workers,
      rampConcurrency: nums['ramp-concurrency']!,
      rampRate: nums['ramp-rate']!,
      payloadBytes: nums['payload-bytes']!,
      spreadSources: !(values['no-spread'] ?? false),
      pids,
      metrics: values.metrics ?? [],
      redis,
      redisPassword: env.BENCH_REDIS_PASSWORD,
      redisUsername: env.BENCH_REDIS_USERNAME === '' ? undefined : env.BENCH_REDIS_USERNAME,
      out: values.out,
      maxLoss,
      maxErrors: nums['max-errors']!,
      drainTimeoutS: nums['drain-timeout']!,
      quiet: values.quiet ?? false,
      json: values.json ?? false,
    },
  };
}
