/**
 * Server memory per idle connection, one variant against another in the same invocation: starts
 * one Redis Cluster (LocalCluster), then for each round and each variant one socketfleet server
 * through the image's entrypoint with the variant's node flags, environment or config, opens
 * --connections bench clients straight to it (each joins one room), holds them --hold seconds
 * (past a heartbeat) and reads the server's RSS and V8 heap from /proc and its /metrics.
 * Variants run one after another, never side by side, so they do not share the cores.
 * Run: npm run bench:memory -- --connections 12000 --variants baseline,semi-1 --rounds 2
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ServerConfigInput } from '../../server-image/src/config.js';
import type { BenchOptions } from '../../operator/bench/options.js';
import { sampleProcesses } from '../../operator/bench/resources.js';
import type { BenchResult } from '../../operator/bench/result.js';
import { runBench } from '../../operator/bench/run.js';
import { buildServerConfig } from '../../operator/desired/server-config.js';
import { LocalCluster, PASSWORD_FILE } from '../../operator/local/cluster.js';
import { ensureBinaries } from '../../operator/local/deps.js';
import { freePort } from '../../operator/local/ports.js';
import { killAllSupervised } from '../../operator/local/process.js';
import { startServer } from '../../operator/local/server.js';
import { benchCluster } from './targets.js';
import { runMain } from './run-main.js';

/** One way of running the server: node flags, extra environment, config overrides. */
export interface Variant {
  nodeOptions?: string;
  env?: Record<string, string>;
  config?: Partial<ServerConfigInput>;
  /** Write a heap snapshot (after a full GC) while the clients are held, into --out. */
  snapshot?: boolean;
  note: string;
}

export const VARIANTS: Record<string, Variant> = {
  baseline: { note: 'the image as shipped' },
  'keep-request': {
    config: { keepHttpRequest: true },
    note: "Socket.IO's default: each session's first HTTP request kept",
  },
  'websocket-only': {
    config: { transports: ['websocket'] },
    note: 'engine.io transports: websocket only (no polling, no upgrade)',
  },
  'semi-1': {
    nodeOptions: '--max-semi-space-size=1',
    note: 'V8 young generation capped at 1 MiB per semi-space',
  },
  'semi-2': { nodeOptions: '--max-semi-space-size=2', note: 'V8 semi-space 2 MiB' },
  'semi-4': { nodeOptions: '--max-semi-space-size=4', note: 'V8 semi-space 4 MiB' },
  'semi-8': { nodeOptions: '--max-semi-space-size=8', note: 'V8 semi-space 8 MiB' },
  'arena-2': { env: { MALLOC_ARENA_MAX: '2' }, note: 'glibc malloc arenas capped at 2' },
  snapshot: {
    nodeOptions: '--heapsnapshot-signal=SIGUSR2',
    snapshot: true,
    note: 'baseline, with a heap snapshot of the held connections (what the live objects are)',
  },
  'optimize-size': { nodeOptions: '--optimize-for-size', note: 'V8 --optimize-for-size' },
};

interface HeapSample {
  heapUsed: number;
  heapTotal: number;
  external: number;
  newSpace: number;
}

/** The prom-client default metrics of one server's /metrics. */
async function heapOf(opsPort: number): Promise<HeapSample | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${opsPort}/metrics`, {
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    return {
      heapUsed: value(/^nodejs_heap_size_used_bytes (\S+)/m),
      heapTotal: value(/^nodejs_heap_size_total_bytes (\S+)/m),
      external: value(/^nodejs_external_memory_bytes (\S+)/m),
      newSpace: value(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m),
    };
  } catch {
    return undefined;
  }
}

/** Signals the server (the entrypoint exec'd node, so the pid is node's) and waits for the file. */
async function snapshot(pid: number, dir: string): Promise<void> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    // The file appears empty, then grows; its size stops changing once the snapshot is written.
    if (file !== undefined) {
      const size = statSync(join(dir, file)).size;
      if (size === 0) continue;
      await new Promise((r) => setTimeout(r, 2000));
      if (statSync(join(dir, file)).size === size) {
        log(`heap snapshot ${join(dir, file)}`);
        return;
      }
    }
  }
  log('heap snapshot did not appear within 120 s');
}

interface Row {
  variant: string;
  round: number;
  connected: number;
  rssConnectKiB: number;
  rssHeldKiB: number;
  heapUsedKiB: number;
  heapTotalKiB: number;
  externalKiB: number;
  newSpaceMiB: number;
  cpuMsPerConnection: number;
  disconnects: number;
  lost: number;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

const perConn = (after: number, before: number, n: number): number =>
  n === 0 ? 0 : (after - before) / n / 1024;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' },
      hold: { type: 'string' },
      variants: { type: 'string' },
      rounds: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const connections = Number(values.connections ?? 12000);
  const hold = Number(values.hold ?? 30);
  const rounds = Number(values.rounds ?? 1);
  const names = (values.variants ?? 'baseline').split(',').filter((s) => s.length > 0);
  for (const n of names)
    if (!VARIANTS[n] && !n.startsWith('app='))
      throw new Error(
        `unknown variant "${n}"; known: ${Object.keys(VARIANTS).join(', ')}, or app=PATH (another build's server-image/bin/socketfleet-server.js).`,
      );
  if (!Number.isInteger(connections) || connections < 1 || connections > 18000)
    throw new Error('--connections must be an integer from 1 to 18000 (one server process).');
  const out = resolve(
    values.out ?? join('bench-results', `memory-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  );
  mkdirSync(join(out, 'servers', 'logs'), { recursive: true });
  const bins = ensureBinaries(log);
  if ('error' in bins) throw new Error(bins.error);
  const cluster = benchCluster('memory', 'ip-hash', {
    servers: 1,
    shards: 1,
    stateDir: out,
    bins,
    log,
  });
  const local = new LocalCluster({
    stateDir: join(out, 'state'),
    gatewayPort: await freePort(),
    binaries: bins,
    log,
    drainGraceSeconds: 5,
  });
  process.on('exit', () => killAllSupervised());
  const rows: Row[] = [];
  try {
    await local.start(cluster);
    const seeds = local.redisPorts().map((port) => ({ host: '127.0.0.1', port }));
    let id = 100;
    for (let round = 1; round <= rounds; round++) {
      for (const name of names) {
        // app=PATH: another build's server entry (say, a copy of an earlier commit's dist).
        const v: Variant = name.startsWith('app=')
          ? {
              env: { SOCKETFLEET_APP: resolve(name.slice(4)) },
              note: `the server at ${name.slice(4)}`,
            }
          : VARIANTS[name]!;
        const saved = { ...process.env };
        process.env.SOCKETFLEET_NODE_OPTIONS = `${v.nodeOptions ?? ''}${v.snapshot ? ` --diagnostic-dir=${out}` : ''}`;
        Object.assign(process.env, v.env ?? {});
        const server = await startServer({
          id: id++,
          port: await freePort(),
          opsPort: await freePort(),
          config: { ...buildServerConfig(cluster, seeds), ...v.config },
          shardsKey: name,
          stateDir: join(out, 'servers'),
          passwordFile: local.redisPassword ? join(local.stateDir, PASSWORD_FILE) : undefined,
        });
        process.env = saved;
        let heapBefore: HeapSample | undefined;
        let heapHeld: HeapSample | undefined;
        let rssHeld = 0;
        try {
          // Let the fresh process finish its start-up allocations before the baseline sample.
          await new Promise((r) => setTimeout(r, 3000));
          heapBefore = await heapOf(server.opsPort);
          log(`round ${round} ${name}: ${v.note}`);
          const options: BenchOptions = {
            url: `http://127.0.0.1:${server.port}`,
            path: '/socket.io',
            clients: connections,
            rooms: 200,
            rate: 10,
            durationS: hold,
            publishers: 1,
            parser: 'msgpack',
            transports: ['websocket'],
            roomQuery: false,
            roomKey: 'room',
            protocol: 'socketio',
            event: 'message',
            workers: Math.max(2, Math.ceil(connections / 8000)),
            rampConcurrency: 50,
            payloadBytes: 370,
            spreadSources: true,
            pids: [server.proc.pid],
            metrics: [],
            redis: [],
            redisPassword: undefined,
            out: undefined,
            maxLoss: 0,
            maxErrors: 0,
            drainTimeoutS: 30,
            quiet: true,
            json: false,
          };
          const r: BenchResult = await runBench(options, () => undefined, {
            held: async () => {
              heapHeld = await heapOf(server.opsPort);
              rssHeld = sampleProcesses([server.proc.pid]).rssBytes;
              if (v.snapshot) await snapshot(server.proc.pid, out);
            },
          });
          const s = r.server!;
          const n = r.connections.connected;
          const row: Row = {
            variant: name,
            round,
            connected: n,
            rssConnectKiB: perConn(s.rssAfterConnectBytes, s.rssBeforeBytes, n),
            rssHeldKiB: perConn(rssHeld, s.rssBeforeBytes, n),
            heapUsedKiB: perConn(heapHeld?.heapUsed ?? NaN, heapBefore?.heapUsed ?? NaN, n),
            heapTotalKiB: perConn(heapHeld?.heapTotal ?? NaN, heapBefore?.heapTotal ?? NaN, n),
            externalKiB: perConn(heapHeld?.external ?? NaN, heapBefore?.external ?? NaN, n),
            newSpaceMiB: (heapHeld?.newSpace ?? NaN) / 1048576,
            cpuMsPerConnection: s.cpuMsPerConnection,
            disconnects: r.errors.disconnects,
            lost: r.delivery.lost,
          };
          rows.push(row);
          log(
            `round ${round} ${name}: ${n} connected, RSS/conn ${row.rssConnectKiB.toFixed(1)} KiB after connect, ${row.rssHeldKiB.toFixed(1)} KiB after ${hold}s; heap used ${row.heapUsedKiB.toFixed(1)}, heap total ${row.heapTotalKiB.toFixed(1)}, external ${row.externalKiB.toFixed(1)} KiB/conn; new space ${row.newSpaceMiB.toFixed(1)} MiB`,
          );
        } finally {
          await server.proc.stop(5000);
        }
      }
    }
  } finally {
    await local.stop();
  }
  const header =
    '| variant | round | connected | RSS/conn after connect KiB | RSS/conn after hold KiB | heap used/conn KiB | heap total/conn KiB | external/conn KiB | new space MiB | CPU ms/conn | disconnects | lost |';
  const table = [
    `Command: npm run bench:memory -- ${argv.join(' ')} (node ${process.version})`,
    '',
    header,
    '|' +
      header
        .split('|')
        .slice(1, -1)
        .map(() => '---')
        .join('|') +
      '|',
    ...rows.map(
      (r) =>
        `| ${r.variant} | ${r.round} | ${r.connected} | ${r.rssConnectKiB.toFixed(1)} | ${r.rssHeldKiB.toFixed(1)} | ${r.heapUsedKiB.toFixed(1)} | ${r.heapTotalKiB.toFixed(1)} | ${r.externalKiB.toFixed(1)} | ${r.newSpaceMiB.toFixed(1)} | ${r.cpuMsPerConnection.toFixed(2)} | ${r.disconnects} | ${r.lost} |`,
    ),
  ].join('\n');
  writeFileSync(join(out, 'memory.md'), table + '\n');
  writeFileSync(join(out, 'memory.json'), JSON.stringify(rows, null, 2) + '\n');
  process.stdout.write(`\n${table}\n`);
  return rows.every((r) => r.connected === connections && r.disconnects === 0) ? 0 : 1;
}

runMain('memory', main);
