import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Histogram } from 'hdr-histogram-js';
import { isLoopbackHost } from './addresses.js';
import { decodeHistogram, latencyBuckets, newHistogram, summarize } from './histogram.js';
import type { BenchOptions } from './options.js';
import { nowMs } from './payload.js';
import type { FromWorker, Tick, ToWorker, WorkerConfig } from './protocol.js';
import {
  RedisSampler,
  sampleProcesses,
  scrapeMetrics,
  type ProcSample,
  type RedisSample,
} from './resources.js';
import { evaluate, type BenchResult, type TimelinePoint } from './result.js';

export type ProgressSink = (line: string) => void;

/** Points in a run where a caller (the capacity and memory benches) samples what it watches. */
export interface BenchHooks {
  /** The client worker processes are forked (their pids), before any connects. */
  started?(clientPids: number[]): void;
  /** Every client is connected and joined, the servers have settled; publishing starts next. */
  connected?(): Promise<void> | void;
  /** Publishing and the drain are over; the clients are still connected. */
  held?(): Promise<void> | void;
}

function workerPath(): string {
  const here = fileURLToPath(import.meta.url);
  // Under tsx the sources run as .ts; the forked worker inherits tsx's loader through execArgv.
  const p = join(dirname(here), `worker${extname(here)}`);
  if (!existsSync(p)) throw new Error(`The bench worker ${p} is missing; run npm run build.`);
  return p;
}

interface WorkerState {
  child: ChildProcess;
  config: WorkerConfig;
  ready?: Extract<FromWorker, { type: 'ready' }>;
  published?: Extract<FromWorker, { type: 'published' }>;
  lastTick?: Tick;
  baseTick?: Tick;
  progress: { connected: number; failed: number };
  done: boolean;
}

function splitClients(options: BenchOptions): WorkerConfig[] {
  const spread = options.spreadSources && isLoopbackHost(new URL(options.url).hostname);
  const per = Math.ceil(options.clients / options.workers);
  const configs: WorkerConfig[] = [];
  for (let w = 0; w < options.workers; w++) {
    const first = w * per;
    const count = Math.max(0, Math.min(per, options.clients - first));
    configs.push({
      workerId: w,
      url: options.url,
      path: options.path,
      protocol: options.protocol,
      parser: options.parser,
      transports: options.transports,
      roomQuery: options.roomQuery,
      roomKey: options.roomKey,
      event: options.event,
      spreadSources: spread,
      rampConcurrency: options.rampConcurrency,
      rampPerSecond: (options.rampRate ?? 0) / options.workers,
      payloadBytes: options.payloadBytes,
      rooms: options.rooms,
      firstClient: first,
      clientCount: count,
      publishers: [],
      totalPublishers: options.publishers,
      publisherRate: options.rate / options.publishers,
      publisherAddressBase: options.clients,
    });
  }
  for (let p = 0; p < options.publishers; p++) configs[p % configs.length]!.publishers.push(p);
  return configs;
}

async function sampleServers(options: BenchOptions): Promise<ProcSample | undefined> {
  if (options.pids.length > 0) return sampleProcesses(options.pids);
  if (options.metrics.length > 0) return scrapeMetrics(options.metrics);
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs one benchmark: ramp, join, publish, drain, and returns the measured result. */
export async function runBench(
  options: BenchOptions,
  progress: ProgressSink,
  hooks: BenchHooks = {},
): Promise<BenchResult> {
  const path = workerPath();
  const workers: WorkerState[] = [];
  const timeline = new Map<number, { sent: number; delivered: number; hist: Histogram }>();
  const total = newHistogram();
  const generatorLateness = newHistogram();
  let waiters: (() => void)[] = [];
  let workerFailure: string | undefined;
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const until = async (cond: () => boolean, timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (workerFailure) throw new Error(workerFailure);
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  };

  const redis =
    options.redis.length > 0
      ? new RedisSampler(options.redis, options.redisPassword, options.redisUsername)
      : undefined;
  const startedAt = new Date().toISOString();
  try {
    // Fail on a wrong Redis address or password before opening thousands of sockets.
    await redis?.sample();
    for (const config of splitClients(options)) {
      const child = fork(path, [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      const state: WorkerState = {
        child,
        config,
        progress: { connected: 0, failed: 0 },
        done: false,
      };
      child.on('message', (msg: FromWorker) => {
        if (msg.type === 'progress')
          state.progress = { connected: msg.connected, failed: msg.failed };
        else if (msg.type === 'ready') state.ready = msg;
        else if (msg.type === 'published') state.published = msg;
        else if (msg.type === 'done') state.done = true;
        else {
          if (msg.t >= 0 && state.baseTick === undefined) state.baseTick = msg;
          const prev = state.lastTick ?? msg;
          state.lastTick = msg;
          const h = decodeHistogram(msg.hist);
          total.add(h);
          generatorLateness.add(decodeHistogram(msg.lateness));
          if (msg.t >= 0) {
            const slot = timeline.get(msg.t) ?? { sent: 0, delivered: 0, hist: newHistogram() };
            slot.sent += msg.sent - (prev === msg ? 0 : prev.sent);
            slot.delivered += msg.delivered - (prev === msg ? 0 : prev.delivered);
            slot.hist.add(h);
            timeline.set(msg.t, slot);
          }
        }
        wake();
      });
      child.on('exit', (code) => {
        if (!state.done)
          workerFailure = `bench worker ${config.workerId} exited with code ${code} before finishing.`;
        state.done = true;
        wake();
      });
      workers.push(state);
    }

    const before = await sampleServers(options);
    const clientPids = workers.map((w) => w.child.pid).filter((p): p is number => p !== undefined);
    const clientBefore = sampleProcesses(clientPids);
    hooks.started?.(clientPids);
    const connectStart = nowMs();
    for (const w of workers) w.child.send({ type: 'init', config: w.config } satisfies ToWorker);
    const ramp = setInterval(() => {
      const c = workers.reduce((a, w) => a + (w.ready?.connected ?? w.progress.connected), 0);
      const f = workers.reduce((a, w) => a + (w.ready?.failed ?? w.progress.failed), 0);
      const s = (nowMs() - connectStart) / 1000;
      progress(
        `ramp  ${s.toFixed(0)}s  connected ${c}/${options.clients}  failed ${f}  ${(c / Math.max(s, 0.001)).toFixed(0)}/s`,
      );
    }, 1000);
    try {
      await until(() => workers.every((w) => w.ready !== undefined), 30 * 60_000);
    } finally {
      clearInterval(ramp);
    }
    const connectSeconds = (nowMs() - connectStart) / 1000;
    const members = new Array<number>(options.rooms).fill(0);
    let connected = 0;
    let failed = 0;
    let joinFailed = 0;
    const samples = new Set<string>();
    for (const w of workers) {
      connected += w.ready!.connected;
      failed += w.ready!.failed;
      joinFailed += w.ready!.joinFailed;
      w.ready!.members.forEach((n, i) => (members[i] = members[i]! + n));
      w.ready!.errorSamples.forEach((e) => samples.add(e));
    }
    progress(
      `ready ${connected} connected, ${failed} failed, ${joinFailed} joins refused in ${connectSeconds.toFixed(1)}s`,
    );
    // Let the servers settle (GC, buffers) before reading memory per connection.
    await sleep(1000);
    const afterConnect = await sampleServers(options);
    const clientStart = sampleProcesses(clientPids);
    const redisStart: RedisSample | undefined = await redis?.sample();
    await hooks.connected?.();
    const durationMs = options.durationS * 1000;
    const startAt = nowMs() + 500;
    for (const w of workers) w.child.send({ type: 'run', startAt, durationMs } satisfies ToWorker);
    let lastPrinted = -1;
    const delivered = (): number => workers.reduce((a, w) => a + (w.lastTick?.delivered ?? 0), 0);
    const printer = setInterval(() => {
      // Slot s holds the second (s-1, s]; print it once every worker had time to report it.
      const s = Math.floor((nowMs() - startAt) / 1000) - 1;
      const slot = timeline.get(s);
      if (s > lastPrinted && s > 0 && slot) {
        lastPrinted = s;
        const l = summarize(slot.hist);
        progress(
          `run   ${s}s/${options.durationS}s  sent ${slot.sent}/s  delivered ${slot.delivered}/s  p50 ${l.p50Ms}ms  p99 ${l.p99Ms}ms`,
        );
      }
    }, 250);
    let expected = 0;
    let refused = 0;
    let sent = 0;
    try {
      await until(() => workers.every((w) => w.published !== undefined), durationMs + 60_000);
      for (const w of workers) {
        if (!w.published) continue;
        refused += w.published.refused;
        w.published.errorSamples.forEach((e) => samples.add(e));
        w.published.sentPerRoom.forEach((n, i) => {
          sent += n;
          expected += n * members[i]!;
        });
      }
      await until(() => delivered() >= expected, options.drainTimeoutS * 1000);
    } finally {
      clearInterval(printer);
    }
    const runSeconds = (nowMs() - startAt) / 1000;
    const afterRun = await sampleServers(options);
    const clientEnd = sampleProcesses(clientPids);
    const redisEnd = await redis?.sample();
    await hooks.held?.();
    for (const w of workers)
      if (w.child.connected) w.child.send({ type: 'stop' } satisfies ToWorker);
    await until(() => workers.every((w) => w.done), 10_000);

    const finalDelivered = workers.reduce((a, w) => a + (w.lastTick?.delivered ?? 0), 0);
    const bytes = workers.reduce(
      (a, w) => a + ((w.lastTick?.bytesRead ?? 0) - (w.baseTick?.bytesRead ?? 0)),
      0,
    );
    const disconnects = workers.reduce((a, w) => a + (w.lastTick?.disconnects ?? 0), 0);
    const timelinePoints: TimelinePoint[] = [...timeline.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([t, s]) => {
        const l = summarize(s.hist);
        return { t, sent: s.sent, delivered: s.delivered, p50Ms: l.p50Ms, p99Ms: l.p99Ms };
      });
    const lost = Math.max(0, expected - finalDelivered);
    const result: BenchResult = {
      version: 1,
      startedAt,
      target: {
        url: options.url,
        protocol: options.protocol,
        parser: options.parser,
        transports: options.transports,
        roomQuery: options.roomQuery,
      },
      workload: {
        clients: options.clients,
        rooms: options.rooms,
        rate: options.rate,
        durationS: options.durationS,
        publishers: options.publishers,
        payloadBytes: options.payloadBytes,
        workers: options.workers,
      },
      connections: {
        connected,
        failed,
        joinFailed,
        connectSeconds,
        connectRatePerS: connected / Math.max(connectSeconds, 0.001),
      },
      delivery: {
        published: sent,
        refused,
        expected,
        delivered: finalDelivered,
        lost,
        lossRatio: expected === 0 ? 0 : lost / expected,
        extra: Math.max(0, finalDelivered - expected),
      },
      latency: summarize(total),
      generatorLateness: summarize(generatorLateness),
      latencyBuckets: latencyBuckets(total),
      wire: {
        bytesReceived: bytes,
        bytesPerDelivered: finalDelivered === 0 ? 0 : bytes / finalDelivered,
      },
      // The load generator shares the machine: if its CPU nears workers x 1 core, latency is ours.
      clients: {
        processes: clientPids.length,
        cpuSecondsConnect: clientStart.cpuSeconds - clientBefore.cpuSeconds,
        rssAfterConnectBytes: clientStart.rssBytes,
        cpuSecondsRun: clientEnd.cpuSeconds - clientStart.cpuSeconds,
        runSeconds,
      },
      errors: {
        total: failed + joinFailed + refused + disconnects,
        connectFailed: failed,
        joinFailed,
        refused,
        disconnects,
        samples: [...samples].slice(0, 10),
      },
      timeline: timelinePoints,
      pass: true,
      failures: [],
    };
    if (before && afterConnect && afterRun) {
      const cpuRun = afterRun.cpuSeconds - afterConnect.cpuSeconds;
      const cpuConnect = afterConnect.cpuSeconds - before.cpuSeconds;
      const systemRun = afterRun.systemSeconds - afterConnect.systemSeconds;
      result.server = {
        source: options.pids.length > 0 ? 'proc' : 'metrics',
        processes: afterRun.processes,
        cpuSecondsConnect: cpuConnect,
        cpuSecondsRun: cpuRun,
        runSeconds,
        cpuMsPerConnection: connected === 0 ? 0 : (cpuConnect * 1000) / connected,
        cpuMsPer1000Delivered: finalDelivered === 0 ? 0 : (cpuRun * 1_000_000) / finalDelivered,
        systemCpuMsPer1000Delivered:
          finalDelivered === 0 ? 0 : (systemRun * 1_000_000) / finalDelivered,
        rssBeforeBytes: before.rssBytes,
        rssAfterConnectBytes: afterConnect.rssBytes,
        rssPerConnectionBytes:
          connected === 0 ? 0 : (afterConnect.rssBytes - before.rssBytes) / connected,
        rssAfterRunBytes: afterRun.rssBytes,
      };
    }
    if (redisStart && redisEnd) {
      const b = redisEnd.netBytes - redisStart.netBytes;
      result.redis = {
        shards: redisEnd.shards,
        netBytes: b,
        bytesPerPublished: sent === 0 ? 0 : b / sent,
      };
    }
    return evaluate(result, options);
  } finally {
    redis?.close();
    for (const w of workers)
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  }
}
