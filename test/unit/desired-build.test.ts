// Tests read deep into plain Kubernetes objects whose shape the builders, not types, define.
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return */
import { describe, expect, it } from 'vitest';
import {
  buildDesired,
  buildRedisAuthSecret,
  deriveRedisPasswords,
  resourceNames,
  serverSelector,
  type KubeObject,
} from '../../operator/desired/index.js';
import { clusterFrom, manifest } from './helpers.js';

type Obj = KubeObject & { spec?: Record<string, unknown> };

function build(spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): Obj[] {
  const cluster = clusterFrom({ ...manifest(spec), metadata: { name: 'demo', ...meta } });
  return buildDesired(cluster).objects;
}

function find(objects: Obj[], kind: string, name: string): Obj {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
}

function podSpec(o: Obj): Record<string, any> {
  return (o.spec as any).template.spec;
}

describe('buildDesired', () => {
  it('returns every owned object in apply order', () => {
    const objects = build({ redis: { shards: 2 } });
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ServiceAccount/demo-socketfleet',
      'ServiceAccount/demo-gateway-sync',
      'NetworkPolicy/demo-redis',
      'NetworkPolicy/demo-server',
      'NetworkPolicy/demo-gateway',
      'ConfigMap/demo-redis-config',
      'Service/demo-redis-0',
      'StatefulSet/demo-redis-0',
      'PodDisruptionBudget/demo-redis-0',
      'Service/demo-redis-1',
      'StatefulSet/demo-redis-1',
      'PodDisruptionBudget/demo-redis-1',
      'ConfigMap/demo-server-config',
      'Service/demo-server',
      'Deployment/demo-server',
      'PodDisruptionBudget/demo-server',
      'Role/demo-gateway-sync',
      'RoleBinding/demo-gateway-sync',
      'ConfigMap/demo-gateway-nginx',
      'Service/demo-gateway',
      'Deployment/demo-gateway',
      'PodDisruptionBudget/demo-gateway',
    ]);
  });

  it('sets namespace and a controller owner reference when the cluster has a uid', () => {
    const objects = build({}, { namespace: 'rt', uid: 'uid-1' });
    for (const o of objects) {
      expect(o.metadata.namespace).toBe('rt');
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'socketfleet.dev/v1alpha1',
          kind: 'RealtimeCluster',
          name: 'demo',
          uid: 'uid-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
    for (const o of build()) {
      expect(o.metadata.ownerReferences).toBeUndefined();
      expect(o.metadata.namespace).toBeUndefined();
    }
  });

  it('labels every object and selects pods by the immutable subset', () => {
    const objects = build({ redis: { shards: 2 } });
    for (const o of objects) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'socketfleet',
        'app.kubernetes.io/instance': 'demo',
        'app.kubernetes.io/managed-by': 'socketfleet-operator',
      });
    }
    const shard1 = find(objects, 'StatefulSet', 'demo-redis-1');
    expect((shard1.spec as any).selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'socketfleet',
      'app.kubernetes.io/instance': 'demo',
      'app.kubernetes.io/component': 'redis',
      'socketfleet.dev/shard': '1',
    });
    expect((shard1.spec as any).template.metadata.labels['socketfleet.dev/shard']).toBe('1');
    const server = find(objects, 'Deployment', 'demo-server');
    expect((server.spec as any).selector.matchLabels['app.kubernetes.io/component']).toBe('server');
    expect(serverSelector(clusterFrom(manifest()))).toBe(
      'app.kubernetes.io/name=socketfleet,app.kubernetes.io/instance=demo,app.kubernetes.io/component=server',
    );
  });

  it('never carries a Redis password: no env var, no command line, only Secret file mounts', () => {
    const objects = build();
    const text = JSON.stringify(objects);
    expect(text).not.toContain('"kind":"Secret"');
    expect(text).not.toContain('requirepass');
    expect(text).not.toMatch(/"secretKeyRef":\{"name":"demo-redis/);
    expect(text).not.toContain('REDISCLI_AUTH');
    // Redis pods mount the hashes and the replication password only; servers the server password.
    interface Volume {
      name: string;
      secret: { secretName: string; items: { key: string }[] };
    }
    const redis = podSpec(find(objects, 'StatefulSet', 'demo-redis-0'));
    const auth = (redis.volumes as Volume[]).find((v) => v.name === 'auth')!;
    expect(auth.secret.secretName).toBe('demo-redis-acl');
    expect(auth.secret.items.map((i) => i.key).sort()).toEqual([
      'exporter-password.sha256',
      'operator-password.sha256',
      'replication-password',
      'replication-password.sha256',
      'server-password.sha256',
    ]);
    expect(redis.containers[0].command).toEqual(['sh', '/etc/redis/start.sh']);
    const server = podSpec(find(objects, 'Deployment', 'demo-server'));
    const serverAuth = (server.volumes as Volume[]).find((v) => v.name === 'redis-auth')!;
    expect(serverAuth.secret).toEqual({
      secretName: 'demo-redis-acl',
      defaultMode: 0o440,
      items: [{ key: 'server-password', path: 'password' }],
    });
    expect(server.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: 'REDIS_USERNAME', value: 'socketfleet-server' },
        { name: 'REDIS_PASSWORD_FILE', value: '/etc/socketfleet/redis-auth/password' },
      ]),
    );
    const passwords = deriveRedisPasswords(Buffer.alloc(32, 1), 'uid-1');
    const secret = buildRedisAuthSecret(clusterFrom(manifest({}, 'demo')), passwords);
    expect(secret).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'demo-redis-acl' },
      stringData: {
        'server-password': passwords.server,
        'replication-password': passwords.replication,
      },
    });
    // The operator's password is derived again when needed; the Secret holds only its hash.
    expect(JSON.stringify(secret)).not.toContain(passwords.operator);
  });

  it('drops auth wiring when Redis auth is disabled', () => {
    const objects = build({ redis: { auth: { enabled: false } } });
    const redis = podSpec(find(objects, 'StatefulSet', 'demo-redis-0')).containers[0];
    expect(redis.command).toEqual(['sh', '/etc/redis/start.sh']);
    expect(JSON.stringify(objects)).not.toContain('demo-redis-acl');
    const conf = find(objects, 'ConfigMap', 'demo-redis-config').data as Record<string, string>;
    expect(conf['redis.conf']).not.toContain('include');
    expect(conf['start.sh']).not.toContain('user ');
  });

  it('scales shards and replicas from the spec', () => {
    const objects = build({ replicas: 7, redis: { shards: 5 }, gateway: { replicas: 3 } });
    expect(objects.filter((o) => o.kind === 'StatefulSet')).toHaveLength(5);
    const headless = objects.filter(
      (o) => o.kind === 'Service' && (o.spec as any).clusterIP === 'None',
    );
    expect(headless.map((o) => o.metadata.name)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `demo-redis-${i}`),
    );
    expect((find(objects, 'Deployment', 'demo-server').spec as any).replicas).toBe(7);
    expect((find(objects, 'Deployment', 'demo-gateway').spec as any).replicas).toBe(3);
  });

  it('leaves the gateway out with gateway mode none and opens the Socket.IO port', () => {
    const objects = build({ gateway: { mode: 'none' } });
    // Only the sync sidecar's ServiceAccount stays: it holds no token and no Role.
    expect(
      objects.filter((o) => o.metadata.name.startsWith('demo-gateway')).map((o) => o.kind),
    ).toEqual(['ServiceAccount']);
    const np = find(objects, 'NetworkPolicy', 'demo-server');
    expect((np.spec as any).ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 3000 }] },
      {
        from: [
          {
            namespaceSelector: {},
            podSelector: {
              matchLabels: {
                'app.kubernetes.io/name': 'socketfleet-operator',
                'app.kubernetes.io/component': 'operator',
              },
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 9090 }],
      },
      { ports: [{ protocol: 'TCP', port: 9090 }] },
    ]);
  });

  it('restricts Redis to the servers and the servers to the gateway', () => {
    const objects = build();
    const redis = find(objects, 'NetworkPolicy', 'demo-redis').spec as any;
    expect(redis.podSelector.matchLabels['app.kubernetes.io/component']).toBe('redis');
    expect(redis.ingress).toEqual([
      {
        from: [
          {
            podSelector: {
              matchLabels: {
                'app.kubernetes.io/name': 'socketfleet',
                'app.kubernetes.io/instance': 'demo',
                'app.kubernetes.io/component': 'server',
              },
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 6379 }],
      },
      {
        from: [
          {
            podSelector: {
              matchLabels: {
                'app.kubernetes.io/name': 'socketfleet',
                'app.kubernetes.io/instance': 'demo',
                'app.kubernetes.io/component': 'redis',
              },
            },
          },
        ],
        ports: [
          { protocol: 'TCP', port: 6379 },
          { protocol: 'TCP', port: 16379 },
        ],
      },
      {
        from: [
          {
            namespaceSelector: {},
            podSelector: {
              matchLabels: {
                'app.kubernetes.io/name': 'socketfleet-operator',
                'app.kubernetes.io/component': 'operator',
              },
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 6379 }],
      },
    ]);
    const server = find(objects, 'NetworkPolicy', 'demo-server').spec as any;
    expect(server.ingress[0].from[0].podSelector.matchLabels['app.kubernetes.io/component']).toBe(
      'gateway',
    );
    expect(server.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 3000 }]);
    // The operator's autopilot reads the metrics port by its own rule; other scrapers by the open one.
    expect(server.ingress[1].from[0].podSelector.matchLabels['app.kubernetes.io/component']).toBe(
      'operator',
    );
    expect(server.ingress[2]).toEqual({ ports: [{ protocol: 'TCP', port: 9090 }] });
    expect(
      build({ networkPolicy: { enabled: false } }).some((o) => o.kind === 'NetworkPolicy'),
    ).toBe(false);
  });

  it('runs every workload with its own ServiceAccount, no automounted token and non-root containers', () => {
    const objects = build({ tuning: { mode: 'off' } });
    expect(find(objects, 'ServiceAccount', 'demo-socketfleet').automountServiceAccountToken).toBe(
      false,
    );
    const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    expect(workloads).toHaveLength(3);
    for (const w of workloads) {
      const pod = podSpec(w);
      // Only the gateway talks to the API server, through its sync sidecar's own account.
      expect(pod.serviceAccountName).toBe(
        w.metadata.name === 'demo-gateway' ? 'demo-gateway-sync' : 'demo-socketfleet',
      );
      expect(pod.automountServiceAccountToken).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext, `${w.metadata.name}/${c.name}`).toMatchObject({
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.resources.requests, `${w.metadata.name}/${c.name}`).toBeDefined();
      }
    }
    const uid = (name: string, kind: string): number =>
      podSpec(find(objects, kind, name)).containers[0].securityContext.runAsUser;
    expect(uid('demo-server', 'Deployment')).toBe(10001);
    expect(uid('demo-redis-0', 'StatefulSet')).toBe(999);
    expect(uid('demo-gateway', 'Deployment')).toBe(101);
  });

  it('builds names in one place', () => {
    const n = resourceNames('chat');
    expect([n.server, n.serverConfig, n.gateway, n.gatewayConfig, n.redisAuthSecret]).toEqual([
      'chat-server',
      'chat-server-config',
      'chat-gateway',
      'chat-gateway-nginx',
      'chat-redis-acl',
    ]);
    expect(n.serviceAccount).toBe('chat-socketfleet');
    expect(n.redisShard(3)).toBe('chat-redis-3');
  });
});
