/**
 * The capacity run's verdict: one PASS/FAIL line per target of issue 18, and where the machine
 * itself was the limit, which resource and by how much. Pure: the bench gathers the facts.
 */

export interface CapacityTargets {
  connections: number;
  holdSeconds: number;
  publishesPerSecond: number;
  serverRssPerConnectionKiB: number;
}

export const ISSUE_TARGETS: CapacityTargets = {
  connections: 100_000,
  holdSeconds: 300,
  publishesPerSecond: 1000,
  serverRssPerConnectionKiB: 12,
};

/** CPU seconds of one group of processes over a phase. */
export interface PhaseCpu {
  clients: number;
  servers: number;
  nginx: number;
  redis: number;
}

export interface CapacityFacts {
  asked: number;
  connected: number;
  failed: number;
  joinFailed: number;
  disconnects: number;
  holdSeconds: number;
  rampSeconds: number;
  rate: number;
  published: number;
  refused: number;
  expected: number;
  lost: number;
  latencyMs: { p50: number; p99: number; p999: number; max: number };
  generatorLateP99Ms: number;
  serverRssPerConnectionBytes: number;
  serverRssPerConnectionHeldBytes: number | undefined;
  nginxRssPerConnectionBytes: number;
  nginxWorkers: number;
  errorSamples: string[];
  machine: {
    cores: number;
    /** Busy fraction of all cores, every process on the machine (it is shared). */
    busyRamp: number;
    busyHold: number;
    memTotalBytes: number;
    memAvailableMinBytes: number;
    /** The most file descriptors one process of each role held, and the per-process hard limit. */
    maxFds: { role: string; fds: number }[];
    fdLimit: number;
    /** Kernel memory of all TCP sockets, the most seen (sockstat pages x page size). */
    tcpKernelBytes: number;
  };
  cpuRamp: PhaseCpu;
  cpuHold: PhaseCpu;
  clientProcesses: number;
  clientRssBytes: number;
}

const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
const gib = (b: number): string => `${(b / 1073741824).toFixed(1)} GiB`;
const pct = (f: number): string => `${(f * 100).toFixed(0)}%`;
const cores = (cpuSeconds: number, seconds: number): string =>
  (cpuSeconds / Math.max(seconds, 0.001)).toFixed(2);
const n = (x: number): string => x.toLocaleString('en-US');
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');

/** One line per target, then the machine's numbers and which of them limited the run. */
export function capacityReport(
  f: CapacityFacts,
  t: CapacityTargets = ISSUE_TARGETS,
): { lines: string[]; pass: boolean } {
  const held =
    f.asked >= t.connections &&
    f.connected >= t.connections &&
    f.failed === 0 &&
    f.joinFailed === 0 &&
    f.disconnects === 0 &&
    f.holdSeconds >= t.holdSeconds;
  const achievedRate = f.published / Math.max(f.holdSeconds, 0.001);
  const background =
    f.rate >= t.publishesPerSecond &&
    achievedRate >= 0.99 * t.publishesPerSecond &&
    f.lost === 0 &&
    f.refused === 0;
  const rssKiB = f.serverRssPerConnectionBytes / 1024;
  const memory = f.connected > 0 && rssKiB <= t.serverRssPerConnectionKiB;
  const lines = [
    `${verdict(held)}  ${n(t.connections)} connections held ${t.holdSeconds} s with zero unexpected disconnects: ${n(f.connected)} of ${n(f.asked)} held for ${f.holdSeconds.toFixed(0)} s, ${n(f.failed)} failed to connect, ${n(f.joinFailed)} joins refused, ${n(f.disconnects)} unexpected disconnects`,
    `${verdict(background)}  ${n(t.publishesPerSecond)} publishes/s in the background, none lost: ${achievedRate.toFixed(0)}/s for ${f.holdSeconds.toFixed(0)} s, ${n(f.lost)} of ${n(f.expected)} deliveries lost, ${n(f.refused)} refused; latency from due time p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms, p999 ${f.latencyMs.p999} ms, max ${f.latencyMs.max} ms (generator late p99 ${f.generatorLateP99Ms} ms)`,
    `${verdict(memory)}  server RSS per idle connection <= ${t.serverRssPerConnectionKiB} KiB: ${kib(f.serverRssPerConnectionBytes)} after the ramp${f.serverRssPerConnectionHeldBytes === undefined ? '' : `, ${kib(f.serverRssPerConnectionHeldBytes)} at the end of the hold (with the background traffic)`}`,
    `INFO  nginx memory per connection: ${kib(f.nginxRssPerConnectionBytes)} RSS (${f.nginxWorkers} workers; the kernel's TCP buffers are in no process's RSS: ${gib(f.machine.tcpKernelBytes)} for all TCP sockets at the most)`,
  ];
  const m = f.machine;
  const ours = (c: PhaseCpu): number => c.clients + c.servers + c.nginx + c.redis;
  lines.push(
    `MACHINE  ${m.cores} cores ${pct(m.busyRamp)} busy during the ${f.rampSeconds.toFixed(0)} s ramp (this run's processes: clients ${cores(f.cpuRamp.clients, f.rampSeconds)}, servers ${cores(f.cpuRamp.servers, f.rampSeconds)}, nginx ${cores(f.cpuRamp.nginx, f.rampSeconds)}, redis ${cores(f.cpuRamp.redis, f.rampSeconds)} cores), ${pct(m.busyHold)} during the hold (clients ${cores(f.cpuHold.clients, f.holdSeconds)}, servers ${cores(f.cpuHold.servers, f.holdSeconds)}, nginx ${cores(f.cpuHold.nginx, f.holdSeconds)}, redis ${cores(f.cpuHold.redis, f.holdSeconds)} cores)`,
    `MACHINE  memory ${gib(m.memAvailableMinBytes)} available of ${gib(m.memTotalBytes)} at the lowest; clients ${f.clientProcesses} processes, ${gib(f.clientRssBytes)} RSS (${kib(f.connected > 0 ? f.clientRssBytes / f.connected : 0)} per connection)`,
    `MACHINE  open files, most in one process: ${m.maxFds.map((x) => `${x.role} ${n(x.fds)}`).join(', ')} (hard limit ${n(m.fdLimit)} per process)`,
  );
  const limits: string[] = [];
  const rampBusy = m.busyRamp >= 0.9;
  const ourShare = ours(f.cpuRamp) / Math.max(f.rampSeconds * m.cores, 0.001);
  if (f.failed > 0 && rampBusy)
    limits.push(
      `CPU during the ramp: ${n(f.failed)} handshakes failed (${f.errorSamples.join('; ') || 'no sample'}) while both cores were ${pct(m.busyRamp)} busy (${pct(ourShare)} of them this run's processes); pace the ramp (--ramp-rate) or move the load generator to its own machine`,
    );
  else if (f.failed > 0)
    limits.push(
      `${n(f.failed)} handshakes failed with the cores ${pct(m.busyRamp)} busy, so not CPU: ${f.errorSamples.join('; ') || 'no sample'}`,
    );
  if (m.busyHold >= 0.9)
    limits.push(
      `CPU during the hold: ${pct(m.busyHold)} busy, so the latency figures include queueing for the cores`,
    );
  if (m.memAvailableMinBytes < 0.1 * m.memTotalBytes)
    limits.push(`memory: only ${gib(m.memAvailableMinBytes)} was left available`);
  for (const x of m.maxFds)
    if (x.fds > 0.9 * m.fdLimit)
      limits.push(`open files: a ${x.role} process held ${n(x.fds)} of its ${n(m.fdLimit)}`);
  if (f.asked < t.connections)
    limits.push(
      `this run asked for ${n(f.asked)} connections, fewer than the ${n(t.connections)} target`,
    );
  lines.push(
    limits.length === 0
      ? 'LIMIT  none of CPU (>= 90% busy), memory (< 10% available) or open files (> 90% of the limit) was reached'
      : `LIMIT  ${limits.join('; ')}`,
  );
  return { lines, pass: held && background && memory };
}
