/**
 * The comparative benchmark of issues 6 and 7: one invocation starts, on this machine, plain
 * Socket.IO as teams run it today, socketfleet (ip-hash and room-affinity, through the same
 * LocalCluster as `socketfleet up`) and a raw ws floor, runs the same workload against each
 * with `socketfleet bench`'s engine, and prints the ratios to plain and to the floor with
 * issue 18's targets. Run with `npm run bench` (or `npx tsx test/bench/compare.ts --help`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchOptions } from '../../operator/bench/options.js';
import type { BenchResult } from '../../operator/bench/result.js';
import { formatSummary } from '../../operator/bench/result.js';
import { runBench } from '../../operator/bench/run.js';
import { ensureBinaries } from '../../operator/local/deps.js';
import { killAllSupervised } from '../../operator/local/process.js';
import { formatHotspots, hotspots } from './cpuprofile.js';
import {
  AT_SCALE_TARGETS,
  combineRounds,
  formatComparison,
  formatKernelShares,
  formatVerdicts,
  judge,
  metricsOf,
  ratio,
  TARGETS,
  type Metrics,
} from './compare-table.js';
import {
  startPlain,
  startSocketfleet,
  startWsFloor,
  TARGET_LABELS,
  type Target,
  type TargetKey,
  type TargetOptions,
} from './targets.js';
import { runMain } from './run-main.js';

const USAGE = `Usage: npx tsx test/bench/compare.ts [options]   (npm run bench -- [options])

  --clients N      clients per target (default 3000)
  --rooms N        rooms (default 30; 600 with --at-scale)
  --rate N         publishes per second (default 300)
  --duration S     seconds of publishing (default 30)
  --rounds N       run every target N times, interleaved, and report medians
                   (default 3; 1 with --at-scale)
  --servers N      Socket.IO server processes per target (default 3)
  --at-scale       50 mostly idle servers, many small rooms: the Redis bytes target at scale
  --shards N       socketfleet Redis shards (default 2)
  --publishers N   publisher connections (default: one per room)
  --workers N      bench client processes (default 2)
  --targets LIST   plain,ip-hash,ip-hash-json,room-affinity,ws (default all; plain,room-affinity
                   with --at-scale); ip-hash-json is socketfleet with the JSON parser
  --out DIR        where results go (default bench-results/compare-<time>)
  --strict         exit 1 when a target fails or any run failed
  --cpu-prof       profile every server (node --cpu-prof) and print where their CPU goes
`;

const ORDER: TargetKey[] = ['plain', 'ip-hash', 'ip-hash-json', 'room-affinity', 'ws'];

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string' },
      rooms: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      servers: { type: 'string' },
      'at-scale': { type: 'boolean' },
      shards: { type: 'string' },
      publishers: { type: 'string' },
      workers: { type: 'string' },
      targets: { type: 'string' },
      out: { type: 'string' },
      strict: { type: 'boolean' },
      'cpu-prof': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const atScale = values['at-scale'] ?? false;
  const num = (v: string | undefined, d: number): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got "${v}"`);
    return n;
  };
  const clients = num(values.clients, 3000);
  const rooms = num(values.rooms, atScale ? 600 : 30);
  const rate = num(values.rate, 300);
  const duration = num(values.duration, 30);
  // At scale the target is Redis bytes, which one round measures steadily; 100 processes are slow to start.
  const rounds = num(values.rounds, atScale ? 1 : 3);
  const servers = num(values.servers, atScale ? 50 : 3);
  const shards = num(values.shards, 2);
  const publishers = num(values.publishers, rooms);
  const workers = num(values.workers, 2);
  const keys = (values.targets ?? (atScale ? 'plain,room-affinity' : ORDER.join(','))).split(
    ',',
  ) as TargetKey[];
  for (const k of keys)
    if (!ORDER.includes(k)) throw new Error(`unknown target "${k}"; use ${ORDER.join(',')}`);
  const out = resolve(
    values.out ??
      join('bench-results', `compare-${new Date().toISOString().replace(/[:.]/g, '-')}`),
  );
  mkdirSync(out, { recursive: true });

  const bins = ensureBinaries(log);
  if ('error' in bins) {
    process.stderr.write(`compare: ${bins.error}\n`);
    return 1;
  }
  const topts: TargetOptions = { servers, shards, stateDir: join(out, 'state'), bins, log };
  const command = `npm run bench -- ${argv.join(' ')}`.trim();
  log(
    `workload: ${clients} clients, ${rooms} rooms, ${rate} publishes/s for ${duration}s from ${publishers} publishers, ${servers} servers per target`,
  );

  // Indexed by round, so a failed round leaves a hole instead of shifting the pairing with plain.
  const results: Partial<Record<TargetKey, (BenchResult | undefined)[]>> = {};
  let failedRuns = 0;
  const profiles: string[] = [];
  let current: Target | undefined;
  const onSignal = (): void => {
    killAllSupervised();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSupervised);

  // Rounds interleave the targets, so a slow minute on this shared machine hits all of them.
  const runs = Array.from({ length: rounds }, (_, round) =>
    ORDER.filter((k) => keys.includes(k)).map((key) => ({ key, round })),
  ).flat();
  for (const { key, round } of runs) {
    log(`=== ${TARGET_LABELS[key]}: starting (round ${round + 1} of ${rounds})`);
    const profDir = join(out, 'cpu-prof', key);
    if (values['cpu-prof']) {
      mkdirSync(profDir, { recursive: true });
      // The image's entrypoint and the plain/ws scripts all run node with these options.
      process.env.SOCKETFLEET_NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${profDir}`;
      process.env.BENCH_NODE_OPTIONS = process.env.SOCKETFLEET_NODE_OPTIONS;
    }
    try {
      current =
        key === 'plain'
          ? await startPlain(topts)
          : key === 'ws'
            ? await startWsFloor(topts)
            : await startSocketfleet(topts, key);
      const options: BenchOptions = {
        url: current.url,
        path: '/socket.io',
        clients,
        rooms,
        rate,
        durationS: duration,
        publishers,
        parser: current.parser,
        transports: ['websocket'],
        roomQuery: current.roomQuery,
        roomKey: 'room',
        protocol: current.protocol,
        event: 'message',
        workers,
        rampConcurrency: 50,
        payloadBytes: 370,
        spreadSources: true,
        pids: current.serverPids(),
        metrics: [],
        redis: current.redis,
        redisPassword: current.redisPassword,
        redisUsername: current.redisUsername,
        out: undefined,
        maxLoss: 0,
        maxErrors: 0,
        drainTimeoutS: 15,
        quiet: false,
        json: false,
      };
      log(`=== ${TARGET_LABELS[key]}: ${current.url}, ${options.pids.length} server process(es)`);
      const r = await runBench(options, (l) => log(`[${key}] ${l}`));
      (results[key] ??= [])[round] = r;
      writeFileSync(join(out, `${key}-${round + 1}.json`), JSON.stringify(r, null, 2) + '\n');
      process.stderr.write(`${formatSummary(r)}\n`);
    } catch (err) {
      failedRuns++;
      log(`=== ${TARGET_LABELS[key]}: failed: ${(err as Error).message}`);
    } finally {
      await current?.stop();
      current = undefined;
    }
    if (values['cpu-prof'] && round === rounds - 1) {
      const spots = hotspots(profDir);
      if (spots.length > 0) {
        const text = formatHotspots(spots);
        profiles.push(
          `${TARGET_LABELS[key]} (self time as % of busy CPU, all server processes):\n${text}`,
        );
        log(`=== ${TARGET_LABELS[key]}: CPU profile in ${profDir}\n${text}`);
      }
    }
  }

  const metrics: Partial<Record<TargetKey, Metrics>> = {};
  const completed = (k: TargetKey): BenchResult[] =>
    (results[k] ?? []).filter((r): r is BenchResult => r !== undefined);
  for (const k of ORDER) {
    const list = completed(k);
    if (list.length > 0) metrics[k] = combineRounds(list.map(metricsOf));
  }
  const cpuOf = (k: TargetKey, round: number): number | undefined => {
    const r = results[k]?.[round];
    return r && metricsOf(r).cpuMsPer1000;
  };
  // Each round's CPU ratio to plain in that same round: the spread behind the medians.
  const cpuSpread = ORDER.filter((k) => k !== 'plain' && results[k] && results.plain).map((k) => {
    const perRound = Array.from({ length: rounds }, (_, round) => {
      const v = ratio(cpuOf(k, round), cpuOf('plain', round));
      return v === undefined ? 'n/a' : v.toFixed(2);
    });
    return `- ${k} / plain, server CPU per round: ${perRound.join(', ')}`;
  });
  const partial = ORDER.filter((k) => keys.includes(k) && completed(k).length < rounds).map(
    (k) => `- ${k}: ${completed(k).length} of ${rounds} rounds completed`,
  );
  const labels: Record<string, string> = {
    plain: 'plain',
    'ip-hash': 'sf ip-hash',
    'ip-hash-json': 'sf ip-hash json',
    'room-affinity': 'sf room-affinity',
    ws: 'ws floor',
  };
  const verdicts = judge(
    atScale ? AT_SCALE_TARGETS : TARGETS,
    {
      ...(metrics.plain ? { plain: metrics.plain } : {}),
      ...(metrics.ws ? { ws: metrics.ws } : {}),
    },
    {
      ...(metrics['ip-hash'] ? { 'ip-hash': metrics['ip-hash'] } : {}),
      ...(metrics['room-affinity'] ? { 'room-affinity': metrics['room-affinity'] } : {}),
    },
  );
  const kernelShares = formatKernelShares(metrics, ORDER);
  const md = [
    `Command: \`${command}\``,
    '',
    `Workload: ${clients} clients, ${rooms} rooms, ${rate} publishes/s for ${duration} s from ${publishers} publishers, ~370-byte JSON payload, ${servers} server processes per Socket.IO target (socketfleet on ${shards} Redis shards), WebSocket transport, ${new Date().toISOString()}.`,
    '',
    `Medians of ${rounds} interleaved round(s); loss is the worst round.`,
    '',
    formatComparison(metrics, ORDER, labels),
    '',
    ...cpuSpread,
    ...partial,
    '',
    ...(kernelShares.length > 0
      ? [
          "Server CPU per delivered message split into kernel (system) and user-space time, each as a share of plain's total:",
          '',
          ...kernelShares,
          '',
        ]
      : []),
    'Targets of issue 18 (ratio socketfleet/plain, or to the raw ws floor where it says so):',
    '',
    '```',
    formatVerdicts(verdicts),
    '```',
    '',
    ...(profiles.length > 0
      ? [
          'Where the servers spend CPU (node --cpu-prof):',
          '',
          '```',
          profiles.join('\n\n'),
          '```',
          '',
        ]
      : []),
  ].join('\n');
  writeFileSync(join(out, 'compare.md'), md);
  writeFileSync(
    join(out, 'compare.json'),
    JSON.stringify({ command, metrics, verdicts }, null, 2) + '\n',
  );
  process.stdout.write(`\n${md}\nResults in ${out}\n`);
  const failed = verdicts.some((v) => v.pass === false) || failedRuns > 0;
  return values.strict && failed ? 1 : 0;
}

runMain('compare', main);
