import type { RealtimeClusterStatus } from '../api/realtimecluster.js';
import type { GatewayReading, ServerReading } from './prom-text.js';

/**
 * Trouble the operator can see before users do, as conditions that are True while it lasts
 * (like a Node's MemoryPressure). Pure: the loop passes what it read.
 */
export type AbnormalityType =
  | 'EventLoopLagging'
  | 'PublishLoss'
  | 'ShardWithoutReplica'
  | 'ConnectionsSkewed'
  | 'GatewayConfigRejected';

export interface Abnormality {
  type: AbnormalityType;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** p99 event-loop lag above which a server counts as lagging, unless the spec sets a target. */
export const DEFAULT_LAG_THRESHOLD_MS = 200;
/** Scrape intervals in a row with new lost publishes before the loss counts as persistent. */
export const PERSISTENT_LOSS_INTERVALS = 3;
/** A pod with more than this multiple of the mean connections counts as a pile-up. */
export const SKEW_FACTOR = 2;
/** Below this mean per pod, a few reconnects make any ratio; skew is not judged. */
export const SKEW_MIN_MEAN = 20;

export interface PodObservation {
  pod: string;
  reading: ServerReading | undefined;
  /** New lost publishes per past scrape interval, oldest first (at most a few kept). */
  lossDeltas: number[];
}

export interface AbnormalityInput {
  pods: PodObservation[];
  lagThresholdMs: number;
  replicasPerShard: number;
  redis: RealtimeClusterStatus['redis'];
}

const list = (names: string[]): string =>
  names.length <= 5
    ? names.join(', ')
    : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;

export function detectAbnormalities(input: AbnormalityInput): Abnormality[] {
  const read = input.pods.filter(
    (p): p is PodObservation & { reading: ServerReading } => p.reading !== undefined,
  );
  const out: Abnormality[] = [];

  const lagging = read.filter((p) => (p.reading.lagMs ?? 0) > input.lagThresholdMs);
  out.push(
    lagging.length > 0
      ? {
          type: 'EventLoopLagging',
          status: 'True',
          reason: 'LagOverThreshold',
          message: `Event-loop lag (p99) over ${input.lagThresholdMs} ms on ${list(lagging.map((p) => `${p.pod} (${Math.round(p.reading.lagMs ?? 0)} ms)`))}.`,
        }
      : {
          type: 'EventLoopLagging',
          status: 'False',
          reason: 'AsExpected',
          message: `Every sampled server's event-loop lag (p99) is at most ${input.lagThresholdMs} ms.`,
        },
  );

  const losing = read.filter(
    (p) =>
      p.lossDeltas.length >= PERSISTENT_LOSS_INTERVALS &&
      p.lossDeltas.slice(-PERSISTENT_LOSS_INTERVALS).every((d) => d > 0),
  );
  out.push(
    losing.length > 0
      ? {
          type: 'PublishLoss',
          status: 'True',
          reason: 'PersistentPublishLoss',
          message: `Publishes lost (failed or short of member servers) in each of the last ${PERSISTENT_LOSS_INTERVALS} samples on ${list(losing.map((p) => p.pod))}.`,
        }
      : {
          type: 'PublishLoss',
          status: 'False',
          reason: 'AsExpected',
          message: 'No server loses publishes persistently.',
        },
  );

  const bare =
    input.replicasPerShard > 0
      ? (input.redis?.shards ?? []).filter((s) => !s.retiring && s.replicasInSync === 0)
      : [];
  out.push(
    bare.length > 0
      ? {
          type: 'ShardWithoutReplica',
          status: 'True',
          reason: 'NoReplicaInSync',
          message: `Redis shard(s) ${bare.map((s) => s.index).join(', ')} have no replica in sync: losing the master silences their rooms until it is back.`,
        }
      : {
          type: 'ShardWithoutReplica',
          status: 'False',
          reason: input.replicasPerShard > 0 ? 'AsExpected' : 'NoReplicasConfigured',
          message:
            input.replicasPerShard > 0
              ? 'Every Redis shard has a replica in sync.'
              : 'spec.redis.replicasPerShard is 0: no shard has a replica to lose.',
        },
  );

  const counted = read.filter((p) => !p.reading.draining && p.reading.connections !== undefined);
  const total = counted.reduce((a, p) => a + (p.reading.connections ?? 0), 0);
  const mean = counted.length > 0 ? total / counted.length : 0;
  const hot = counted.filter((p) => (p.reading.connections ?? 0) > SKEW_FACTOR * mean);
  out.push(
    counted.length >= 2 && mean >= SKEW_MIN_MEAN && hot.length > 0
      ? {
          type: 'ConnectionsSkewed',
          status: 'True',
          reason: 'ConnectionsPileUp',
          message: `${list(hot.map((p) => `${p.pod} (${p.reading.connections ?? 0})`))} hold more than ${SKEW_FACTOR}x the mean of ${Math.round(mean)} connections per server.`,
        }
      : {
          type: 'ConnectionsSkewed',
          status: 'False',
          reason: 'AsExpected',
          message: `No server holds more than ${SKEW_FACTOR}x the mean connections per server.`,
        },
  );
  return out;
}

export interface GatewayObservation {
  pod: string;
  /** undefined: the sidecar did not answer. */
  reading: GatewayReading | undefined;
}

/**
 * A gateway pod whose nginx refused the configuration its sidecar gave it: it keeps serving the
 * previous one, so servers that joined get no clients from it and servers that left still get
 * some. Undefined when no sidecar answered (no claim either way).
 *
 * The upstream block itself is rendered from EndpointSlices, whose addresses the API server
 * validates, so a refusal comes from what nginx re-reads at that reload: nginx.conf from its
 * ConfigMap (the kubelet updates the mounted file in place), or a renewed spec.gateway.tls
 * Secret whose key does not match its certificate; or a bug. (A spec value nginx would refuse,
 * such as the trusted proxy "10.0.0.300/8", is refused by validation before it is rendered.)
 */
export function detectGatewayRejection(gateways: GatewayObservation[]): Abnormality | undefined {
  const read = gateways.filter(
    (g): g is GatewayObservation & { reading: GatewayReading } => g.reading !== undefined,
  );
  if (read.length === 0) return undefined;
  const refused = read.filter((g) => g.reading.configRejected);
  if (refused.length === 0) {
    return {
      type: 'GatewayConfigRejected',
      status: 'False',
      reason: 'AsExpected',
      message: 'Every gateway pod runs the last configuration its sidecar gave nginx.',
    };
  }
  const said = refused.find((g) => g.reading.message !== undefined)?.reading.message;
  const words =
    said === undefined ? 'nginx gave no message' : `nginx said: ${said.replace(/\.$/, '')}`;
  return {
    type: 'GatewayConfigRejected',
    status: 'True',
    reason: 'NginxRejectedConfig',
    message: `nginx refused a new configuration on gateway pod(s) ${list(refused.map((g) => g.pod))} and keeps serving the previous one; ${words}.`,
  };
}
