import { createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { KindCache } from '../../operator/reconcile/informers.js';
import type { CaBundle } from '../../operator/reconcile/redis-ca.js';
import { RedisClusterManager } from '../../operator/reconcile/redis-cluster.js';
import { clusterFrom, manifest } from './helpers.js';

/**
 * The operator without the CA bundle of spec.redis.tls: it opens no connection to any node (an
 * unverified TLS connection would send its password to whoever answers), plans nothing, and its
 * plan says why, which becomes the RedisCluster condition's message.
 */

const cluster = clusterFrom({
  ...manifest({
    redis: {
      shards: 1,
      replicasPerShard: 0,
      tls: { secretName: 'demo-redis-tls', caConfigMap: { name: 'demo-redis-ca' } },
    },
  }),
  metadata: { name: 'demo', namespace: 'apps' },
});

function cache(objects: Record<string, unknown>[]): KindCache {
  return {
    list: () => objects,
    get: (_ns: string, name: string) =>
      objects.find((o) => (o.metadata as { name: string }).name === name),
  } as unknown as KindCache;
}

describe('RedisClusterManager with spec.redis.tls', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('without a CA bundle it connects to no node and reports why', async () => {
    let connections = 0;
    server = createServer((s) => {
      connections++;
      s.destroy();
    });
    // Where the pod "runs": the node port 6379 on a loopback address of its own.
    const ip = `127.91.${process.pid % 250}.1`;
    await new Promise<void>((r) => server!.listen(6379, ip, r));
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'demo-redis-0-0',
        namespace: 'apps',
        uid: 'p0',
        labels: {
          'app.kubernetes.io/instance': 'demo',
          'app.kubernetes.io/component': 'redis',
          'socketfleet.dev/shard': '0',
        },
      },
      status: { podIP: ip },
    };
    const sts = { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'demo-redis-0' } };
    const problem =
      'spec.redis.tls.caConfigMap: ConfigMap apps/demo-redis-ca does not exist; the operator cannot verify the Redis nodes without it.';
    const asked: string[] = [];
    const manager = new RedisClusterManager(
      { pods: cache([pod]), statefulSets: cache([sts]) },
      () => [{ username: 'socketfleet-operator', password: 'pw' }],
      pino({ level: 'silent' }),
      (namespace, name, key): Promise<CaBundle> => {
        asked.push(`${namespace}/${name}/${key}`);
        return Promise.resolve({ ok: false, problem });
      },
    );
    try {
      const obs = await manager.observe(cluster, 'apps', 'uid-1');
      expect(asked).toEqual(['apps/demo-redis-ca/ca.crt']);
      expect(obs.plan.reason).toBe(problem);
      expect(obs.plan.steps).toEqual([]);
      expect(obs.views.map((v) => v.nodes)).toEqual([undefined]);
      expect(connections).toBe(0);
    } finally {
      manager.close();
    }
  });
});
