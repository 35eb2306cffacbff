import { describe, expect, it } from 'vitest';
import { setCondition, setConditions, findCondition } from '../../operator/reconcile/conditions.js';
import {
  computeStatus,
  invalidSpecStatus,
  jsonEqual,
  workloadReady,
  type StatusFacts,
} from '../../operator/reconcile/status.js';

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:05:00Z';

const ready = (n: number, generation = 1): StatusFacts['server'] => ({
  generation,
  observedGeneration: generation,
  replicas: n,
  readyReplicas: n,
  updatedReplicas: n,
});

function facts(over: Partial<StatusFacts> = {}): StatusFacts {
  return {
    generation: 3,
    desiredReplicas: 2,
    server: ready(2),
    gateway: { desired: 2, facts: ready(2) },
    shards: [ready(1), ready(1)],
    selector: 'app.kubernetes.io/name=socketfleet,app.kubernetes.io/instance=demo',
    endpoint: 'demo-gateway.default.svc:80',
    ...over,
  };
}

describe('setCondition', () => {
  it('keeps lastTransitionTime while the status stays the same, even if reason or message change', () => {
    const first = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Pending', message: 'a' },
      T0,
    );
    const second = setCondition(
      first,
      { type: 'Ready', status: 'False', reason: 'Other', message: 'b' },
      T1,
    );
    expect(second).toEqual([
      { type: 'Ready', status: 'False', reason: 'Other', message: 'b', lastTransitionTime: T0 },
    ]);
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Pending', message: 'a' },
      T0,
    );
    const second = setCondition(
      first,
      { type: 'Ready', status: 'True', reason: 'AllReady', message: 'b' },
      T1,
      4,
    );
    expect(findCondition(second, 'Ready')).toEqual({
      type: 'Ready',
      status: 'True',
      reason: 'AllReady',
      message: 'b',
      lastTransitionTime: T1,
      observedGeneration: 4,
    });
  });

  it('orders conditions Ready, Progressing, Degraded whatever the input order', () => {
    const list = setConditions(
      [{ type: 'Degraded', status: 'False', reason: 'x', message: 'x', lastTransitionTime: T0 }],
      [
        { type: 'Progressing', status: 'True', reason: 'p', message: 'p' },
        { type: 'Ready', status: 'False', reason: 'r', message: 'r' },
      ],
      T1,
    );
    expect(list.map((c) => c.type)).toEqual(['Ready', 'Progressing', 'Degraded']);
  });
});

describe('workloadReady', () => {
  it('requires the controller to have observed the latest generation', () => {
    expect(workloadReady({ ...ready(2), generation: 2, observedGeneration: 1 }, 2)).toBe(false);
  });
  it('requires exactly the desired number of pods, all ready and updated', () => {
    expect(workloadReady(ready(2), 2)).toBe(true);
    expect(workloadReady(ready(2), 5)).toBe(false);
    expect(workloadReady({ ...ready(3), readyReplicas: 3 }, 2)).toBe(false);
    expect(workloadReady({ ...ready(2), updatedReplicas: 1 }, 2)).toBe(false);
    expect(workloadReady(undefined, 0)).toBe(false);
    expect(workloadReady({ generation: 1, observedGeneration: 1 }, 0)).toBe(true);
  });
});

describe('computeStatus', () => {
  it('reports Ready with counts, selector and observedGeneration when everything is rolled out', () => {
    const s = computeStatus(facts(), undefined, T0);
    expect(s).toMatchObject({
      observedGeneration: 3,
      replicas: 2,
      readyReplicas: 2,
      shards: 2,
      readyShards: 2,
      selector: 'app.kubernetes.io/name=socketfleet,app.kubernetes.io/instance=demo',
      endpoint: 'demo-gateway.default.svc:80',
    });
    expect(findCondition(s.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllReady',
      message: '2/2 servers, 2/2 Redis shards, 2/2 gateways ready.',
      observedGeneration: 3,
    });
    expect(findCondition(s.conditions, 'Progressing')?.status).toBe('False');
    expect(findCondition(s.conditions, 'Degraded')?.status).toBe('False');
  });

  it('reports Progressing while a shard is missing or servers are scaling', () => {
    const s = computeStatus(
      facts({ desiredReplicas: 5, shards: [ready(1), ready(1), undefined] }),
      undefined,
      T0,
    );
    expect(s.readyShards).toBe(2);
    expect(s.shards).toBe(3);
    expect(findCondition(s.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Pending',
      message: '2/5 servers, 2/3 Redis shards, 2/2 gateways ready.',
    });
    expect(findCondition(s.conditions, 'Progressing')?.status).toBe('True');
  });

  it('ignores the gateway when it is not managed', () => {
    const s = computeStatus(facts({ gateway: undefined }), undefined, T0);
    expect(findCondition(s.conditions, 'Ready')?.message).toBe(
      '2/2 servers, 2/2 Redis shards ready.',
    );
  });

  it('is equal to the previous status when nothing changed, so no status write happens', () => {
    const first = computeStatus(facts(), undefined, T0);
    const again = computeStatus(facts(), first, T1);
    expect(jsonEqual(first, again)).toBe(true);
  });

  it('reports Degraded with the reason when the last reconcile failed', () => {
    const s = computeStatus(
      facts({ degraded: { reason: 'ApiForbidden', message: 'no' } }),
      undefined,
      T0,
    );
    expect(findCondition(s.conditions, 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'ApiForbidden',
    });
    expect(findCondition(s.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ApiForbidden',
    });
  });
});

describe('invalidSpecStatus', () => {
  it('keeps the last known counts and names the field in Degraded', () => {
    const previous = computeStatus(facts(), undefined, T0);
    const s = invalidSpecStatus(4, previous, 'InvalidSpec', 'spec.redis.shards: must be >= 1', T1);
    expect(s.observedGeneration).toBe(4);
    expect(s.readyReplicas).toBe(2);
    expect(findCondition(s.conditions, 'Degraded')).toEqual({
      type: 'Degraded',
      status: 'True',
      reason: 'InvalidSpec',
      message: 'spec.redis.shards: must be >= 1',
      lastTransitionTime: T1,
      observedGeneration: 4,
    });
    expect(findCondition(s.conditions, 'Ready')).toMatchObject({
      status: 'False',
      lastTransitionTime: T1,
    });
    // A second pass over the same invalid generation changes nothing.
    expect(
      jsonEqual(invalidSpecStatus(4, s, 'InvalidSpec', 'spec.redis.shards: must be >= 1', T1), s),
    ).toBe(true);
  });
});

describe('jsonEqual', () => {
  it('ignores key order and undefined values but not array order', () => {
    expect(jsonEqual({ a: 1, b: { c: 2, d: undefined } }, { b: { c: 2 }, a: 1 })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
  });
});

describe('computeStatus with the Redis Cluster observed', () => {
  const shard = (index: number, slots: number, inSync: number) => ({
    index,
    master: `demo-redis-${index}-0`,
    slots,
    replicas: 1,
    replicasInSync: inSync,
  });

  it('is Ready only once Redis is stable, and says what Redis is doing meanwhile', () => {
    const busy = computeStatus(
      facts({
        shards: [ready(2), ready(2)],
        nodesPerShard: 2,
        redis: {
          managed: true,
          phase: 'resharding',
          reason: 'Moving 1024 slot(s) from demo-redis-0-0 to demo-redis-1-0.',
          clusterState: 'ok',
          slotsCovered: 16384,
          shards: [shard(0, 12288, 1), shard(1, 4096, 0)],
        },
      }),
      undefined,
      T0,
    );
    expect(findCondition(busy.conditions, 'Ready')).toMatchObject({
      status: 'False',
      message:
        '2/2 servers, 1/2 Redis shards, 2/2 gateways ready. Redis: Moving 1024 slot(s) from demo-redis-0-0 to demo-redis-1-0.',
    });
    expect(findCondition(busy.conditions, 'RedisCluster')).toMatchObject({
      status: 'False',
      reason: 'Resharding',
    });
    expect(busy.readyShards).toBe(1);
    expect(busy.redis).toEqual({
      clusterState: 'ok',
      slotsCovered: 16384,
      shards: [shard(0, 12288, 1), shard(1, 4096, 0)],
    });

    const stable = computeStatus(
      facts({
        shards: [ready(2), ready(2)],
        nodesPerShard: 2,
        redis: {
          managed: true,
          phase: 'stable',
          reason: 'Every slot is served and every shard holds its share.',
          clusterState: 'ok',
          slotsCovered: 16384,
          shards: [shard(0, 8192, 1), shard(1, 8192, 1)],
        },
      }),
      busy,
      T1,
    );
    expect(findCondition(stable.conditions, 'Ready')?.status).toBe('True');
    expect(findCondition(stable.conditions, 'RedisCluster')).toMatchObject({
      status: 'True',
      reason: 'Stable',
    });
    expect(stable.readyShards).toBe(2);
  });

  it('reports Unknown for Redis it does not observe, and judges shards by their pods alone', () => {
    const s = computeStatus(
      facts({
        shards: [ready(2), ready(1)],
        nodesPerShard: 2,
        redis: {
          managed: false,
          reason: 'External',
          message: 'spec.redis.external: the servers use an external Redis Cluster.',
        },
      }),
      undefined,
      T0,
    );
    expect(findCondition(s.conditions, 'RedisCluster')).toMatchObject({
      status: 'Unknown',
      reason: 'External',
    });
    expect(s.readyShards).toBe(1);
    expect(s.redis).toBeUndefined();
  });
});
