/**
 * Capacity run of issue 18: the most concurrent connections this machine holds through the
 * gateway. Starts socketfleet with `socketfleet up`'s LocalCluster (several server processes,
 * nginx with enough workers that none exceeds the 20000 open-file limit), raises the net
 * sysctls it may, opens the connections from several bench workers on spread 127.X.Y.1
 * addresses at a paced rate, holds them for --hold seconds under a background of --rate
 * publishes/s (rooms of --room-size members) with latency taken from each publish's due time,
 * and prints one PASS/FAIL line per target of issue 18 (100,000 held 300 s with zero unexpected
 * disconnects; 1000 publishes/s, none lost; server RSS <= 12 KiB per idle connection), nginx
 * memory per connection, and the machine's CPU, memory and open files with which of them limited
 * the run.
 * Run: npm run bench:capacity -- --connections 100000 --hold 300
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  capacityReport,
  ISSUE_TARGETS,
  type CapacityFacts,
  type PhaseCpu,
} from '../../operator/bench/capacity.js';
import type { BenchOptions } from '../../operator/bench/options.js';
import { PUBLISHES_PER_PUBLISHER } from '../../operator/bench/options.js';
import {
  machineCpu,
  maxOpenFiles,
  memInfo,
  openFilesHardLimit,
  sampleProcesses,
  tcpKernelBytes,
} from '../../operator/bench/resources.js';
import { formatSummary } from '../../operator/bench/result.js';
import { runBench } from '../../operator/bench/run.js';
import { LocalCluster } from '../../operator/local/cluster.js';
import { ensureBinaries } from '../../operator/local/deps.js';
import { freePort } from '../../operator/local/ports.js';
import { killAllSupervised } from '../../operator/local/process.js';
import { benchCluster } from './targets.js';
import { runMain } from './run-main.js';

/** Sockets per server process and per nginx worker (2 descriptors each), under nofile 20000. */
const PER_SERVER = 12000;
/** nginx counts the client and the upstream side of a proxied WebSocket as two connections. */
const NGINX_WORKER_CONNECTIONS = 19000;
const PER_NGINX_WORKER = 8000;
/**
 * Clients per bench worker process: socket.io-client costs CPU per connection, and a worker whose
 * event loop lags misses heartbeats; more, smaller workers keep each loop short.
 */
const CLIENTS_PER_WORKER = 8000;
/**
 * New connections per second. Unpaced, 60,000 handshakes queued behind a saturated machine and
 * 1,657 hit the client's 20 s timeout; a steady rate keeps every handshake's wait short.
 */
const DEFAULT_RAMP_RATE = 200;

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

/** A snapshot of the CPU of each group of this run's processes and of the whole machine. */
interface CpuMark {
  at: number;
  machine: ReturnType<typeof machineCpu>;
  clients: number;
  servers: number;
  nginx: number;
  redis: number;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' },
      hold: { type: 'string' },
      rate: { type: 'string' },
      'room-size': { type: 'string' },
      servers: { type: 'string' },
      workers: { type: 'string' },
      'ramp-rate': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const connections = Number(values.connections ?? ISSUE_TARGETS.connections);
  const hold = Number(values.hold ?? ISSUE_TARGETS.holdSeconds);
  const rate = Number(values.rate ?? ISSUE_TARGETS.publishesPerSecond);
  // Chat-sized rooms: 1000 publishes/s to rooms of 10 is 10,000 deliveries/s, which two cores
  // carry next to the load generator; rooms of hundreds would make this a throughput test.
  const roomSize = Number(values['room-size'] ?? 10);
  const rooms = Math.max(1, Math.ceil(connections / roomSize));
  const servers = Number(values.servers ?? Math.max(2, Math.ceil(connections / PER_SERVER)));
  const nginxWorkers = Math.max(2, Math.ceil(connections / PER_NGINX_WORKER));
  const workers = Number(
    values.workers ?? Math.max(2, Math.ceil(connections / CLIENTS_PER_WORKER)),
  );
  const rampRate = Number(values['ramp-rate'] ?? DEFAULT_RAMP_RATE);
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
    const gatewayPids = (): number[] => {
      const pid = local.gatewayPid();
      return pid === undefined ? [] : [pid];
    };
    let clientPids: number[] = [];
    const mark = (): CpuMark => ({
      at: Date.now(),
      machine: machineCpu(),
      clients: sampleProcesses(clientPids).cpuSeconds,
      servers: sampleProcesses(local.serverPids()).cpuSeconds,
      nginx: sampleProcesses(gatewayPids()).cpuSeconds,
      redis: sampleProcesses(local.redisPids()).cpuSeconds,
    });
    const between = (a: CpuMark, b: CpuMark): PhaseCpu => ({
      clients: b.clients - a.clients,
      servers: b.servers - a.servers,
      nginx: b.nginx - a.nginx,
      redis: b.redis - a.redis,
    });
    const busy = (a: CpuMark, b: CpuMark): number =>
      (b.machine.busy - a.machine.busy) / Math.max(b.machine.total - a.machine.total, 1);
    // The lowest MemAvailable seen, sampled through the whole run.
    let memAvailableMin = memInfo().availableBytes;
    const memTimer = setInterval(() => {
      memAvailableMin = Math.min(memAvailableMin, memInfo().availableBytes);
    }, 2000);
    const nginxBefore = sampleProcesses(gatewayPids()).rssBytes;
    const start = mark();
    let connectedMark: CpuMark | undefined;
    let heldMark: CpuMark | undefined;
    let nginxAfterConnect = nginxBefore;
    let serverRssHeld: number | undefined;
    let tcpBytes = 0;
    // The most open files per role, read when every client is connected and again after the hold.
    const fds = [
      { role: 'server', fds: 0, pids: (): number[] => local.serverPids() },
      { role: 'nginx', fds: 0, pids: gatewayPids },
      { role: 'client', fds: 0, pids: (): number[] => clientPids },
    ];
    const countFds = (): void => {
      for (const f of fds) f.fds = Math.max(f.fds, maxOpenFiles(f.pids()));
    };
    log(
      `${servers} servers, ${nginxWorkers} nginx workers at ${local.url ?? ''}; opening ${connections} connections from ${workers} client processes at ${rampRate}/s, holding ${hold}s at ${rate} publishes/s to ${rooms} rooms`,
    );
    const options: BenchOptions = {
      url: local.url!,
      path: '/socket.io',
      clients: connections,
      rooms,
      rate,
      durationS: hold,
      publishers: Math.ceil(rate / PUBLISHES_PER_PUBLISHER),
      parser: 'msgpack',
      transports: ['websocket'],
      roomQuery: false,
      roomKey: 'room',
      protocol: 'socketio',
      event: 'message',
      workers,
      rampConcurrency: 100,
      rampRate,
      payloadBytes: 370,
      spreadSources: true,
      pids: local.serverPids(),
      metrics: [],
      redis: local.redisPorts().map((port) => ({ host: '127.0.0.1', port })),
      redisPassword: local.redisPassword,
      // The servers' ACL user: the sampler reads INFO and CLUSTER counters with its password.
      redisUsername: local.redisUsername,
      out: undefined,
      maxLoss: 0,
      maxErrors: 0,
      drainTimeoutS: 30,
      quiet: false,
      json: false,
    };
    const r = await runBench(options, log, {
      started: (pids) => {
        clientPids = pids;
      },
      connected: () => {
        connectedMark = mark();
        nginxAfterConnect = sampleProcesses(gatewayPids()).rssBytes;
        tcpBytes = tcpKernelBytes();
        countFds();
      },
      held: () => {
        heldMark = mark();
        serverRssHeld = sampleProcesses(local.serverPids()).rssBytes;
        tcpBytes = Math.max(tcpBytes, tcpKernelBytes());
        countFds();
      },
    }).finally(() => clearInterval(memTimer));
    writeFileSync(join(out, 'capacity.json'), JSON.stringify(r, null, 2) + '\n');
    const end = mark();
    const c = connectedMark ?? end;
    const h = heldMark ?? end;
    const connected = r.connections.connected;
    const mem = memInfo();
    const facts: CapacityFacts = {
      asked: connections,
      connected,
      failed: r.connections.failed,
      joinFailed: r.connections.joinFailed,
      disconnects: r.errors.disconnects,
      holdSeconds: r.server?.runSeconds ?? r.clients.runSeconds,
      rampSeconds: r.connections.connectSeconds,
      rate,
      published: r.delivery.published,
      refused: r.delivery.refused,
      expected: r.delivery.expected,
      lost: r.delivery.lost,
      latencyMs: {
        p50: r.latency.p50Ms,
        p99: r.latency.p99Ms,
        p999: r.latency.p999Ms,
        max: r.latency.maxMs,
      },
      generatorLateP99Ms: r.generatorLateness.p99Ms,
      serverRssPerConnectionBytes: r.server?.rssPerConnectionBytes ?? 0,
      serverRssPerConnectionHeldBytes:
        r.server && serverRssHeld !== undefined && connected > 0
          ? (serverRssHeld - r.server.rssBeforeBytes) / connected
          : undefined,
      nginxRssPerConnectionBytes: connected > 0 ? (nginxAfterConnect - nginxBefore) / connected : 0,
      nginxWorkers,
      errorSamples: r.errors.samples,
      machine: {
        cores: start.machine.cores,
        busyRamp: busy(start, c),
        busyHold: busy(c, h),
        memTotalBytes: mem.totalBytes,
        memAvailableMinBytes: memAvailableMin,
        maxFds: fds.map(({ role, fds: n }) => ({ role, fds: n })),
        fdLimit: openFilesHardLimit(),
        tcpKernelBytes: tcpBytes,
      },
      cpuRamp: between(start, c),
      cpuHold: between(c, h),
      clientProcesses: r.clients.processes,
      clientRssBytes: r.clients.rssAfterConnectBytes ?? 0,
    };
    const report = capacityReport(facts);
    const summary = [
      `Command: npm run bench:capacity -- ${argv.join(' ')}`,
      `${servers} server processes, ${nginxWorkers} nginx workers, ${workers} client processes, ramp paced at ${rampRate}/s, ${rooms} rooms of ~${roomSize}, node ${process.version}.`,
      '',
      ...report.lines,
      '',
      formatSummary(r),
    ].join('\n');
    writeFileSync(join(out, 'capacity.md'), summary + '\n');
    process.stdout.write(`\n${summary}\n`);
    return report.pass ? 0 : 1;
  } finally {
    await local.stop();
    restoreSysctls();
  }
}

runMain('capacity', main);
