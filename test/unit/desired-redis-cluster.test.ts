import { describe, expect, it } from 'vitest';
import {
  buildDesired,
  kubernetesRedisPods,
  redisClusterNodes,
  type KubeObject,
} from '../../operator/desired/index.js';
import { clusterFrom, manifest } from './helpers.js';

/** The Redis Cluster layout: shards x (1 + replicasPerShard) pods, or an external cluster. */

function names(objects: KubeObject[], kind: string): string[] {
  return objects.filter((o) => o.kind === kind).map((o) => o.metadata.name);
}

function cluster(spec: Record<string, unknown>, namespace?: string) {
  const m = manifest(spec);
  if (namespace) (m.metadata as Record<string, unknown>).namespace = namespace;
  return clusterFrom(m);
}

describe('Redis Cluster layout', () => {
  it('runs one StatefulSet, headless Service and PDB per shard with 1 + replicasPerShard pods', () => {
    const { objects } = buildDesired(cluster({ redis: { shards: 3, replicasPerShard: 2 } }));
    expect(names(objects, 'StatefulSet')).toEqual(['demo-redis-0', 'demo-redis-1', 'demo-redis-2']);
    expect(names(objects, 'PodDisruptionBudget')).toEqual([
      'demo-redis-0',
      'demo-redis-1',
      'demo-redis-2',
      'demo-server',
      'demo-gateway',
    ]);
    const sts = objects.find(
      (o) => o.kind === 'StatefulSet' && o.metadata.name === 'demo-redis-1',
    ) as unknown as {
      spec: { replicas: number; updateStrategy: unknown };
    };
    expect(sts.spec.replicas).toBe(3);
    // The operator rolls Redis pods itself, replicas first and masters after a failover.
    expect(sts.spec.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('keeps a removed shard that still holds slots, and only that one', () => {
    const c = cluster({ redis: { shards: 2 } });
    const { objects } = buildDesired(c, { retainedShards: [3] });
    expect(names(objects, 'StatefulSet')).toEqual(['demo-redis-0', 'demo-redis-1', 'demo-redis-3']);
  });

  it('keeps a shrinking shard at the size the planner retains while a pod above is its master', () => {
    const c = cluster({ redis: { shards: 2, replicasPerShard: 1 } });
    const { objects } = buildDesired(c, { retainedNodes: [{ shard: 1, nodes: 3 }] });
    const replicas = objects
      .filter((o) => o.kind === 'StatefulSet')
      .map((o) => [
        o.metadata.name,
        (o as unknown as { spec: { replicas: number } }).spec.replicas,
      ]);
    expect(replicas).toEqual([
      ['demo-redis-0', 2],
      ['demo-redis-1', 3],
    ]);
  });

  it('names every pod by the DNS name it announces', () => {
    const c = cluster({ redis: { shards: 2, replicasPerShard: 1 } }, 'rt');
    expect(kubernetesRedisPods(c).map((p) => `${p.pod}@${p.host}:${p.port}`)).toEqual([
      'demo-redis-0-0@demo-redis-0-0.demo-redis-0.rt.svc:6379',
      'demo-redis-0-1@demo-redis-0-1.demo-redis-0.rt.svc:6379',
      'demo-redis-1-0@demo-redis-1-0.demo-redis-1.rt.svc:6379',
      'demo-redis-1-1@demo-redis-1-1.demo-redis-1.rt.svc:6379',
    ]);
    expect(redisClusterNodes(c)).toHaveLength(4);
  });

  it('runs no Redis for an external cluster and wires its password and TLS into the servers', () => {
    const c = cluster({
      redis: {
        external: {
          nodes: [{ host: 'redis.example.internal', port: 6380 }, { host: '10.0.0.7' }],
          passwordSecret: { name: 'ext-redis' },
          tls: {
            caSecret: { name: 'ext-ca' },
            clientCertSecret: { name: 'ext-client' },
            serverName: 'redis.example.internal',
          },
        },
      },
    });
    const { objects } = buildDesired(c);
    expect(names(objects, 'StatefulSet')).toEqual([]);
    expect(objects.some((o) => o.metadata.name.startsWith('demo-redis'))).toBe(false);
    expect(redisClusterNodes(c)).toEqual([
      { host: 'redis.example.internal', port: 6380 },
      { host: '10.0.0.7', port: 6379 },
    ]);
    const dep = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'demo-server');
    const pod = (
      dep as unknown as {
        spec: {
          template: {
            spec: {
              containers: { env: { name: string; value?: string; valueFrom?: unknown }[] }[];
              volumes: { name: string }[];
            };
          };
        };
      }
    ).spec.template.spec;
    const env = pod.containers[0]!.env;
    // The password as a file from the user's Secret, never an environment variable.
    expect(env.find((e) => e.name === 'REDIS_PASSWORD')).toBeUndefined();
    expect(env.find((e) => e.name === 'REDIS_PASSWORD_FILE')?.value).toBe(
      '/etc/socketfleet/redis-auth/password',
    );
    expect(
      Object.fromEntries(
        env.filter((e) => e.name.startsWith('REDIS_TLS')).map((e) => [e.name, e.value]),
      ),
    ).toEqual({
      REDIS_TLS: 'true',
      REDIS_TLS_SERVER_NAME: 'redis.example.internal',
      REDIS_TLS_CA_FILE: '/etc/socketfleet/redis-tls/ca/ca.crt',
      REDIS_TLS_CERT_FILE: '/etc/socketfleet/redis-tls/client/tls.crt',
      REDIS_TLS_KEY_FILE: '/etc/socketfleet/redis-tls/client/tls.key',
    });
    expect(pod.volumes.map((v) => v.name)).toEqual([
      'config',
      'tmp',
      'redis-auth',
      'redis-tls-ca',
      'redis-tls-client',
    ]);
    // No NetworkPolicy for Redis pods that do not exist; the servers' own policy stays.
    expect(names(objects, 'NetworkPolicy')).toEqual(['demo-server', 'demo-gateway']);
  });
});
