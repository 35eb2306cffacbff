import type { LatencySummary } from './histogram.js';
import type { BenchOptions } from './options.js';

export interface TimelinePoint {
  /** Seconds since publishing started; the point covers the second before t. */
  t: number;
  sent: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  target: {
    url: string;
    protocol: string;
    parser: string;
    transports: string[];
    roomQuery: boolean;
  };
  workload: {
    clients: number;
    rooms: number;
    rate: number;
    durationS: number;
    publishers: number;
    payloadBytes: number;
    workers: number;
  };
  connections: {
    connected: number;
    failed: number;
    joinFailed: number;
    connectSeconds: number;
    connectRatePerS: number;
  };
  delivery: {
    /** Publishes the server accepted. */
    published: number;
    refused: number;
    /** Sum over accepted publishes of the members of the room at publish time. */
    expected: number;
    delivered: number;
    lost: number;
    lossRatio: number;
    /** Deliveries beyond expected: duplicates, or members that were never counted. */
    extra: number;
  };
  /** End-to-end latency from each publish's due time (open loop: generator stalls count). */
  latency: LatencySummary;
  /** How late the generator sent publishes after their due time; the part of latency that is ours. */
  generatorLateness: LatencySummary;
  latencyBuckets: { upToMs: number; count: number }[];
  wire: { bytesReceived: number; bytesPerDelivered: number };
  /** CPU of the bench's own worker processes during the publish phase and drain. */
  clients: {
    processes: number;
    /** CPU of the workers while they opened and joined their connections (the ramp). */
    cpuSecondsConnect?: number;
    rssAfterConnectBytes?: number;
    cpuSecondsRun: number;
    runSeconds: number;
  };
  errors: {
    total: number;
    connectFailed: number;
    joinFailed: number;
    refused: number;
    disconnects: number;
    samples: string[];
  };
  server?: {
    source: 'proc' | 'metrics';
    processes: number;
    cpuSecondsConnect: number;
    cpuSecondsRun: number;
    runSeconds: number;
    cpuMsPerConnection: number;
    cpuMsPer1000Delivered: number;
    /** The kernel's part of cpuMsPer1000Delivered (system CPU time). */
    systemCpuMsPer1000Delivered: number;
    rssBeforeBytes: number;
    rssAfterConnectBytes: number;
    rssPerConnectionBytes: number;
    /** RSS at the end of the hold, clients still connected: the steady state after heartbeats. */
    rssAfterRunBytes?: number;
  };
  redis?: { shards: number; netBytes: number; bytesPerPublished: number };
  timeline: TimelinePoint[];
  pass: boolean;
  failures: string[];
}

/** Applies the --max-loss and --max-errors gates; a failing run makes the CLI exit 1. */
export function evaluate(
  result: BenchResult,
  options: Pick<BenchOptions, 'maxLoss' | 'maxErrors'>,
): BenchResult {
  const failures: string[] = [];
  if (result.delivery.lossRatio > options.maxLoss) {
    failures.push(
      `loss ${(result.delivery.lossRatio * 100).toFixed(3)}% (${result.delivery.lost} of ${result.delivery.expected} deliveries) exceeds --max-loss ${options.maxLoss}`,
    );
  }
  if (result.errors.total > options.maxErrors) {
    failures.push(`${result.errors.total} errors exceed --max-errors ${options.maxErrors}`);
  }
  if (result.connections.connected === 0) failures.push('no client connected');
  return { ...result, pass: failures.length === 0, failures };
}

const kb = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;

export function formatSummary(r: BenchResult): string {
  const lines = [
    `target      ${r.target.url} (${r.target.protocol}, ${r.target.parser}, ${r.target.transports.join('+')}${r.target.roomQuery ? ', room query' : ''})`,
    `workload    ${r.workload.clients} clients, ${r.workload.rooms} rooms, ${r.workload.rate} publishes/s for ${r.workload.durationS}s from ${r.workload.publishers} publishers, ${r.workload.payloadBytes}-byte payload`,
    `connect     ${r.connections.connected} connected, ${r.connections.failed} failed, ${r.connections.joinFailed} joins refused, ${r.connections.connectRatePerS.toFixed(0)}/s over ${r.connections.connectSeconds.toFixed(1)}s`,
    `delivery    ${r.delivery.delivered}/${r.delivery.expected} delivered, ${r.delivery.lost} lost (${(r.delivery.lossRatio * 100).toFixed(3)}%), ${r.delivery.published} published, ${r.delivery.refused} refused`,
    `latency     p50 ${r.latency.p50Ms}ms  p99 ${r.latency.p99Ms}ms  p999 ${r.latency.p999Ms}ms  max ${r.latency.maxMs}ms (from due time)`,
    `generator   sent p50 ${r.generatorLateness.p50Ms}ms  p99 ${r.generatorLateness.p99Ms}ms  max ${r.generatorLateness.maxMs}ms after due time`,
    `wire        ${r.wire.bytesPerDelivered.toFixed(1)} bytes received per delivered message`,
    `bench cpu   ${((r.clients.cpuSecondsRun / Math.max(r.clients.runSeconds, 0.001)) * 100).toFixed(0)}% of one core over ${r.clients.processes} worker(s)`,
  ];
  if (r.server) {
    lines.push(
      `server      ${r.server.cpuMsPer1000Delivered.toFixed(1)} CPU ms per 1000 delivered (${r.server.systemCpuMsPer1000Delivered.toFixed(1)} of it in the kernel), ${r.server.cpuMsPerConnection.toFixed(2)} CPU ms and ${kb(r.server.rssPerConnectionBytes)} RSS per connection (${r.server.processes} processes, ${r.server.source})`,
    );
  }
  if (r.redis)
    lines.push(
      `redis       ${r.redis.bytesPerPublished.toFixed(0)} bytes per published message over ${r.redis.shards} shard(s)`,
    );
  lines.push(
    `errors      ${r.errors.total}${r.errors.samples.length > 0 ? ` (${r.errors.samples.join('; ')})` : ''}`,
  );
  lines.push(r.pass ? 'result      PASS' : `result      FAIL: ${r.failures.join('; ')}`);
  return lines.join('\n');
}
