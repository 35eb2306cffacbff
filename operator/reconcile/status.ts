import type { RealtimeClusterStatus } from '../api/realtimecluster.js';
import type { RedisPhase, RedisShardStatus } from '../desired/redis-planner.js';
import { setConditions, type ConditionInput } from './conditions.js';

/** The status fields of a Deployment or StatefulSet that readiness is judged on. */
export interface WorkloadFacts {
  generation?: number | undefined;
  observedGeneration?: number | undefined;
  replicas?: number | undefined;
  readyReplicas?: number | undefined;
  updatedReplicas?: number | undefined;
}

export interface StatusFacts {
  generation: number | undefined;
  desiredReplicas: number;
  server: WorkloadFacts | undefined;
  /** Undefined when the gateway is not managed by the operator. */
  gateway: { desired: number; facts: WorkloadFacts | undefined } | undefined;
  /** One entry per desired shard, in shard order. */
  shards: (WorkloadFacts | undefined)[];
  /** Pods each shard StatefulSet runs (1 + replicasPerShard); 1 when unset. */
  nodesPerShard?: number;
  /** The Redis Cluster as the operator observed it; undefined for clusters it does not watch. */
  redis?: RedisFacts | undefined;
  selector: string;
  endpoint: string;
  /** Set when the last reconcile could not converge (bad spec or a failing API call). */
  degraded?: { reason: string; message: string } | undefined;
}

export type RedisFacts =
  | { managed: false; reason: 'External' | 'NotObserved'; message: string }
  | {
      managed: true;
      phase: RedisPhase;
      reason: string;
      clusterState: string | undefined;
      slotsCovered: number;
      shards: RedisShardStatus[];
    };

const PHASE_REASON: Record<RedisPhase, string> = {
  stable: 'Stable',
  forming: 'Forming',
  healing: 'Healing',
  resharding: 'Resharding',
  rolling: 'RollingRestart',
  waiting: 'Waiting',
};

/** The Degraded condition of a cluster whose every object was applied, ready or not. */
const NOT_DEGRADED: ConditionInput = {
  type: 'Degraded',
  status: 'False',
  reason: 'AsExpected',
  message: 'Every object is applied.',
};

/** A workload is rolled out when its controller has seen the latest spec and enough pods are ready and current. */
export function workloadReady(w: WorkloadFacts | undefined, desired: number): boolean {
  if (!w) return false;
  if ((w.observedGeneration ?? 0) < (w.generation ?? 0)) return false;
  const ready = w.readyReplicas ?? 0;
  const updated = w.updatedReplicas ?? ready;
  const total = w.replicas ?? 0;
  return ready >= desired && updated >= desired && total === desired;
}

export function computeStatus(
  facts: StatusFacts,
  previous: RealtimeClusterStatus | undefined,
  now: string,
): RealtimeClusterStatus {
  const perShard = facts.nodesPerShard ?? 1;
  const redis = facts.redis;
  const replicas = perShard - 1;
  // A shard is ready when its pods are, and (where the operator observes Redis) when its master
  // serves slots with every replica in sync.
  const readyShards = facts.shards.filter((s, i) => {
    if (!workloadReady(s, perShard)) return false;
    if (!redis?.managed) return true;
    const seen = redis.shards.find((r) => r.index === i);
    return !!seen?.master && seen.slots > 0 && seen.replicasInSync >= replicas;
  }).length;
  const redisStable = !redis?.managed || redis.phase === 'stable';
  const serverReady = workloadReady(facts.server, facts.desiredReplicas);
  const gatewayReady = facts.gateway
    ? workloadReady(facts.gateway.facts, facts.gateway.desired)
    : true;
  const allReady =
    serverReady && readyShards === facts.shards.length && gatewayReady && redisStable;
  const readyServers = facts.server?.readyReplicas ?? 0;

  const parts = [
    `${readyServers}/${facts.desiredReplicas} servers`,
    `${readyShards}/${facts.shards.length} Redis shards`,
  ];
  if (facts.gateway) {
    parts.push(`${facts.gateway.facts?.readyReplicas ?? 0}/${facts.gateway.desired} gateways`);
  }
  let summary = `${parts.join(', ')} ready.`;
  if (redis?.managed && redis.phase !== 'stable') summary += ` Redis: ${redis.reason}`;

  let conditions: ConditionInput[];
  if (facts.degraded) {
    conditions = [
      {
        type: 'Ready',
        status: 'False',
        reason: facts.degraded.reason,
        message: facts.degraded.message,
      },
      { type: 'Progressing', status: 'False', reason: facts.degraded.reason, message: summary },
      { type: 'Degraded', status: 'True', ...facts.degraded },
    ];
  } else if (allReady) {
    conditions = [
      { type: 'Ready', status: 'True', reason: 'AllReady', message: summary },
      { type: 'Progressing', status: 'False', reason: 'Complete', message: summary },
      NOT_DEGRADED,
    ];
  } else {
    conditions = [
      { type: 'Ready', status: 'False', reason: 'Pending', message: summary },
      { type: 'Progressing', status: 'True', reason: 'RollingOut', message: summary },
      NOT_DEGRADED,
    ];
  }

  if (redis) {
    conditions.push(
      redis.managed
        ? {
            type: 'RedisCluster',
            status: redis.phase === 'stable' ? 'True' : 'False',
            reason: PHASE_REASON[redis.phase],
            message: redis.reason,
          }
        : { type: 'RedisCluster', status: 'Unknown', reason: redis.reason, message: redis.message },
    );
  }

  return {
    ...(facts.generation !== undefined ? { observedGeneration: facts.generation } : {}),
    conditions: setConditions(previous?.conditions, conditions, now, facts.generation),
    replicas: facts.server?.replicas ?? 0,
    readyReplicas: readyServers,
    selector: facts.selector,
    shards: facts.shards.length,
    readyShards,
    ...(redis?.managed
      ? {
          redis: {
            ...(redis.clusterState !== undefined ? { clusterState: redis.clusterState } : {}),
            slotsCovered: redis.slotsCovered,
            shards: redis.shards.map((r) => ({ ...r })),
          },
        }
      : {}),
    endpoint: facts.endpoint,
  };
}

/**
 * Status of a cluster the operator cannot converge (a bad spec, or an API call that keeps
 * failing): only observedGeneration and the conditions change; the counts keep their last
 * known values. `retrying` says whether the operator keeps trying on its own.
 */
export function invalidSpecStatus(
  generation: number | undefined,
  previous: RealtimeClusterStatus | undefined,
  reason: string,
  message: string,
  now: string,
  retrying = false,
): RealtimeClusterStatus {
  return {
    ...(previous ?? {}),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions: setConditions(
      previous?.conditions,
      [
        { type: 'Ready', status: 'False', reason, message },
        {
          type: 'Progressing',
          status: 'False',
          reason,
          message: retrying ? 'Retrying with backoff.' : 'Waiting for a corrected spec.',
        },
        { type: 'Degraded', status: 'True', reason, message },
      ],
      now,
      generation,
    ),
  };
}

/** Order-insensitive (for object keys) deep equality of two JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** JSON with object keys sorted, so equal values serialise identically. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}
