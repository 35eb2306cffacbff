import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import type { RedisTarget } from '../../operator/bench/options.js';
import { LocalCluster } from '../../operator/local/cluster.js';
import type { Binaries } from '../../operator/local/deps.js';
import { Gateway } from '../../operator/local/gateway.js';
import { packageRoot } from '../../operator/local/paths.js';
import { canConnect, freePort, waitFor } from '../../operator/local/ports.js';
import { Supervised } from '../../operator/local/process.js';

/** One system under test, started on this machine, reachable at `url`. */
export interface Target {
  key: TargetKey;
  label: string;
  url: string;
  parser: 'json' | 'msgpack';
  protocol: 'socketio' | 'ws';
  roomQuery: boolean;
  serverPids: () => number[];
  redis: RedisTarget[];
  redisPassword: string | undefined;
  /** The ACL user that password belongs to; the default user when undefined. */
  redisUsername: string | undefined;
  stop: () => Promise<void>;
}

export type TargetKey = 'plain' | 'ip-hash' | 'ip-hash-json' | 'room-affinity' | 'ws';

export const TARGET_LABELS: Record<TargetKey, string> = {
  plain: 'plain Socket.IO (JSON, classic redis-adapter on 1 Redis, nginx ip_hash)',
  'ip-hash': 'socketfleet, ip-hash',
  'ip-hash-json': 'socketfleet, ip-hash, JSON parser (what msgpack buys)',
  'room-affinity': 'socketfleet, room-affinity',
  ws: 'raw ws floor (1 process, no Socket.IO, no Redis)',
};

export interface TargetOptions {
  servers: number;
  shards: number;
  stateDir: string;
  bins: Binaries;
  log: (line: string) => void;
}

/** Extra node flags for the plain and floor servers (compare --cpu-prof sets them). */
function nodeOptions(): string[] {
  return (process.env.BENCH_NODE_OPTIONS ?? '').split(' ').filter((s) => s.length > 0);
}

/** At most this many servers start at once: 50 node processes booting together starve 2 cores. */
const START_BATCH = 6;

async function inBatches<T>(n: number, start: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += START_BATCH) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(START_BATCH, n - i) }, (_, j) => start(i + j)),
      )),
    );
  }
  return out;
}

export function benchCluster(
  name: string,
  balance: 'ip-hash' | 'room-affinity',
  o: TargetOptions,
  parser: 'json' | 'msgpack' = 'msgpack',
): RealtimeCluster {
  const r = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name },
    spec: {
      replicas: o.servers,
      // The bench publishes faster than the relay's default per-connection limit allows.
      socketio: { parser, eventsPerSecond: 100000, drainSeconds: 0 },
      redis: { shards: o.shards },
      gateway: { balance },
      // Loopback only, and the bench clients carry no tokens.
      auth: { mode: 'none' },
    },
  });
  if (!r.ok) throw new Error(`bench cluster spec is invalid: ${r.problems.join('; ')}`);
  return r.cluster;
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** (a) What teams run today: N plain servers on one Redis behind the same nginx.conf renderer. */
export async function startPlain(o: TargetOptions): Promise<Target> {
  const dir = join(o.stateDir, 'plain');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const procs: Supervised[] = [];
  let gateway: Gateway | undefined;
  const stop = async (): Promise<void> => {
    await gateway?.stop();
    await Promise.all(procs.map((p) => p.stop(5000)));
  };
  try {
    const redisPort = await freePort();
    const redis = new Supervised(
      'plain-redis',
      o.bins.redisServer,
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        logFile: join(dir, 'logs', 'redis.log'),
        cwd: dir,
      },
    );
    procs.push(redis);
    await waitFor(
      'plain redis',
      () => canConnect(redisPort),
      20_000,
      () => redis.running,
    );
    const script = join(packageRoot(), 'test', 'bench', 'plain-server.mjs');
    const servers = await inBatches(o.servers, async (i) => {
      const port = await freePort();
      const p = new Supervised(`plain-${i}`, process.execPath, [...nodeOptions(), script], {
        env: { ...process.env, PORT: String(port), REDIS_PORT: String(redisPort) },
        logFile: join(dir, 'logs', `server-${i}.log`),
        cwd: dir,
      });
      procs.push(p);
      await waitFor(
        `plain server ${i}`,
        () => httpOk(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`),
        120_000,
        () => p.running,
      );
      return { proc: p, port };
    });
    const cluster = benchCluster('plain', 'ip-hash', o, 'json');
    gateway = new Gateway(o.bins.nginx, dir, await freePort());
    await gateway.start(
      cluster,
      servers.map((s) => ({ ip: '127.0.0.1', port: s.port })),
    );
    return {
      key: 'plain',
      label: TARGET_LABELS.plain,
      url: `http://127.0.0.1:${gateway.port}`,
      parser: 'json',
      protocol: 'socketio',
      roomQuery: false,
      serverPids: () => servers.map((s) => s.proc.pid),
      redis: [{ host: '127.0.0.1', port: redisPort }],
      redisPassword: undefined,
      redisUsername: undefined,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** (b) and (c): socketfleet through the same LocalCluster that `socketfleet up` runs. */
export async function startSocketfleet(
  o: TargetOptions,
  key: 'ip-hash' | 'ip-hash-json' | 'room-affinity',
): Promise<Target> {
  const balance = key === 'room-affinity' ? 'room-affinity' : 'ip-hash';
  const parser = key === 'ip-hash-json' ? 'json' : 'msgpack';
  const local = new LocalCluster({
    stateDir: join(o.stateDir, key),
    gatewayPort: await freePort(),
    binaries: o.bins,
    log: o.log,
    drainGraceSeconds: 5,
    startBatch: START_BATCH,
  });
  try {
    await local.start(benchCluster(`bench-${key}`, balance, o, parser));
  } catch (err) {
    await local.stop();
    throw err;
  }
  return {
    key,
    label: TARGET_LABELS[key],
    url: local.url!,
    parser,
    protocol: 'socketio',
    roomQuery: balance === 'room-affinity',
    serverPids: () => local.serverPids(),
    redis: local.redisPorts().map((port) => ({ host: '127.0.0.1', port })),
    redisPassword: local.redisPassword,
    // The servers' own ACL user: the sampler reads INFO and CLUSTER counters with its password.
    redisUsername: local.redisUsername,
    stop: () => local.stop(),
  };
}

/** (d) The floor: one raw ws process, clients connect to it directly. */
export async function startWsFloor(o: TargetOptions): Promise<Target> {
  const dir = join(o.stateDir, 'ws');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const port = await freePort();
  const p = new Supervised(
    'ws-floor',
    process.execPath,
    [...nodeOptions(), join(packageRoot(), 'test', 'bench', 'ws-floor.mjs')],
    {
      env: { ...process.env, PORT: String(port) },
      logFile: join(dir, 'logs', 'ws.log'),
      cwd: dir,
    },
  );
  await waitFor(
    'ws floor',
    () => canConnect(port),
    20_000,
    () => p.running,
  );
  return {
    key: 'ws',
    label: TARGET_LABELS.ws,
    url: `http://127.0.0.1:${port}`,
    parser: 'json',
    protocol: 'ws',
    roomQuery: false,
    serverPids: () => [p.pid],
    redis: [],
    redisPassword: undefined,
    redisUsername: undefined,
    stop: () => p.stop(5000),
  };
}
