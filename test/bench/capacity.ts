/**
 * Capacity run of issue 6: the most concurrent connections this machine holds through the
 * gateway. Starts socketfleet with `socketfleet up`'s LocalCluster (several server processes,
 * nginx with enough workers that none exceeds the 20000 open-file limit), raises the net
 * sysctls it may, opens the connections from several bench workers on spread 127.X.Y.1
 * addresses, holds them for --hold seconds while broadcasting at a low rate, and reports
 * unexpected disconnects (must be zero) and broadcast latency under that load.
 * Run: npm run bench:capacity -- --connections 40000 --hold 180
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchOptions } from '../../operator/bench/options.js';
import { SOCKETS_PER_WORKER } from '../../operator/bench/options.js';
import { formatSummary } from '../../operator/bench/result.js';
import { runBench } from '../../operator/bench/run.js';
import { LocalCluster } from '../../operator/local/cluster.js';
import { ensureBinaries } from '../../operator/local/deps.js';
import { freePort } from '../../operator/local/ports.js';
import { killAllSupervised } from '../../operator/local/process.js';
import { benchCluster } from './targets.js';

/** Sockets per server process and per nginx worker (2 descriptors each), under nofile 20000. */
const PER_SERVER = 12000;
/** nginx counts the client and the upstream side of a proxied WebSocket as two connections. */
const NGINX_WORKER_CONNECTIONS = 19000;
const PER_NGINX_WORKER = 8000;

/**
 * Queue sizes only: the machine is shared, so nothing that changes which ports the kernel hands
 * out (ip_local_port_range) is touched, and every value is restored when the run ends. Clients
 * bind spread 127.X.Y.1 addresses, so no single source address runs out of ephemeral ports.
 */
const SYSCTLS: Record<string, string> = {
  'net.core.somaxconn': '65535',
  'net.ipv4.tcp_max_syn_backlog': '65535',
  'net.core.netdev_max_backlog': '65535',
};

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

const restore = new Map<string, string>();

/** Raises each sysctl it may and remembers the old value; returns one note per key. */
function raiseSysctls(): string[] {
  const notes: string[] = [];
  for (const [key, value] of Object.entries(SYSCTLS)) {
    const path = `/proc/sys/${key.replace(/\./g, '/')}`;
    try {
      const before = readFileSync(path, 'utf8').trim();
      if (Number(before) < Number(value)) {
        writeFileSync(path, value);
        restore.set(path, before);
      }
      notes.push(`${key}=${value} (was ${before})`);
    } catch (err) {
      notes.push(`${key}: not writable here (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return notes;
}

function restoreSysctls(): void {
  for (const [path, value] of restore) {
    try {
      writeFileSync(path, value);
    } catch {
      // best effort
    }
  }
  restore.clear();
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' },
      hold: { type: 'string' },
      rate: { type: 'string' },
      rooms: { type: 'string' },
      servers: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const connections = Number(values.connections ?? 40000);
  const hold = Number(values.hold ?? 180);
  const rate = Number(values.rate ?? 10);
  const rooms = Number(values.rooms ?? 200);
  const servers = Number(values.servers ?? Math.max(2, Math.ceil(connections / PER_SERVER)));
  const nginxWorkers = Math.max(2, Math.ceil(connections / PER_NGINX_WORKER));
  const out = resolve(
    values.out ??
      join('bench-results', `capacity-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  );
  mkdirSync(out, { recursive: true });
  const bins = ensureBinaries(log);
  if ('error' in bins) {
    process.stderr.write(`capacity: ${bins.error}\n`);
    return 1;
  }
  for (const note of raiseSysctls()) log(`sysctl ${note}`);

  const cluster = benchCluster('capacity', 'ip-hash', {
    servers,
    shards: 2,
    stateDir: out,
    bins,
    log,
  });
  cluster.spec.gateway.workerConnections = NGINX_WORKER_CONNECTIONS;
  // A message every ~25 s per client is the heartbeat; keep Socket.IO's defaults so idle clients cost what they cost.
  const local = new LocalCluster({
    stateDir: join(out, 'state'),
    gatewayPort: await freePort(),
    binaries: bins,
    log,
    nginxWorkers,
    nginxReuseport: true,
    drainGraceSeconds: 5,
  });
  process.on('exit', () => {
    killAllSupervised();
    restoreSysctls();
  });
  const onSignal = (): void => {
    killAllSupervised();
    restoreSysctls();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await local.start(cluster);
    log(
      `${servers} servers, ${nginxWorkers} nginx workers at ${local.url ?? ''}; opening ${connections} connections, holding ${hold}s at ${rate} broadcasts/s`,
    );
    const options: BenchOptions = {
      url: local.url!,
      path: '/socket.io',
      clients: connections,
      rooms,
      rate,
      durationS: hold,
      publishers: 1,
      parser: 'msgpack',
      transports: ['websocket'],
      roomQuery: false,
      roomKey: 'room',
      protocol: 'socketio',
      event: 'message',
      workers: Math.max(2, Math.ceil(connections / Math.min(SOCKETS_PER_WORKER, 12000))),
      rampConcurrency: 100,
      payloadBytes: 370,
      spreadSources: true,
      pids: local.serverPids(),
      metrics: [],
      redis: local.redisPorts().map((port) => ({ host: '127.0.0.1', port })),
      redisPassword: local.redisPassword,
      out: undefined,
      maxLoss: 0,
      maxErrors: 0,
      drainTimeoutS: 30,
      quiet: false,
      json: false,
    };
    const r = await runBench(options, log);
    writeFileSync(join(out, 'capacity.json'), JSON.stringify(r, null, 2) + '\n');
    const summary = [
      `Command: npm run bench:capacity -- ${argv.join(' ')}`,
      `Held ${r.connections.connected} concurrent connections through the nginx gateway for ${hold} s (${servers} server processes, ${nginxWorkers} nginx workers, ${options.workers} client processes), ${r.connections.failed} failed to connect, ${r.errors.disconnects} unexpected disconnects.`,
      `Broadcast latency under that load (${rate}/s to rooms of ~${Math.round(connections / rooms)}): p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, p999 ${r.latency.p999Ms} ms; ${r.delivery.lost} of ${r.delivery.expected} deliveries lost.`,
      r.server
        ? `Server RSS per connection ${(r.server.rssPerConnectionBytes / 1024).toFixed(1)} KiB, ${r.server.cpuMsPerConnection.toFixed(2)} CPU ms per connection to accept.`
        : '',
      '',
      formatSummary(r),
    ].join('\n');
    writeFileSync(join(out, 'capacity.md'), summary + '\n');
    process.stdout.write(`\n${summary}\n`);
    return r.pass ? 0 : 1;
  } finally {
    await local.stop();
    restoreSysctls();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    killAllSupervised();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`capacity: ${(err as Error).message}\n`);
    killAllSupervised();
    process.exit(2);
  },
);
