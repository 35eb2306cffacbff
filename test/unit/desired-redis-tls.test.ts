import { describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import {
  REDIS_TLS_EXTERNAL_MESSAGE,
  REDIS_TLS_IMMUTABLE_MESSAGE,
} from '../../operator/api/redis-tls.js';
import { buildDesired, type KubeObject } from '../../operator/desired/index.js';
import { buildRedisAuthSecret } from '../../operator/desired/secret.js';
import { deriveRedisPasswords } from '../../operator/desired/redis-acl.js';
import { redisTlsServerName } from '../../operator/desired/redis-tls.js';
import { localRedisConf } from '../../operator/local/redis.js';
import { RedisCaReader } from '../../operator/reconcile/redis-ca.js';
import { clusterFrom, manifest } from './helpers.js';

/**
 * spec.redis.tls rendered into the shard pods, the server pods and the exporter; its validation
 * sentences; and how the operator reads the CA bundle (a ConfigMap, by list, cached).
 */

const TLS = { secretName: 'demo-redis-tls', caConfigMap: { name: 'demo-redis-ca' } };

interface Pod {
  containers: {
    name: string;
    args?: string[];
    env?: { name: string; value?: string }[];
    volumeMounts?: { name: string; mountPath: string }[];
    readinessProbe?: { exec: { command: string[] } };
  }[];
  volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
}

function render(redis: Record<string, unknown>): { objects: KubeObject[]; conf: string } {
  const objects = buildDesired(
    clusterFrom({ ...manifest({ redis }), metadata: { name: 'demo', namespace: 'apps' } }),
  ).objects;
  const cm = objects.find((o) => o.metadata.name === 'demo-redis-config') as unknown as {
    data: Record<string, string>;
  };
  return { objects, conf: cm.data['redis.conf']! };
}

function pod(objects: KubeObject[], kind: string): Pod {
  const o = objects.find((x) => x.kind === kind) as unknown as {
    spec: { template: { spec: Pod } };
  };
  return o.spec.template.spec;
}

function problems(redis: Record<string, unknown>): string[] {
  const r = parseRealtimeCluster(manifest({ redis }));
  return r.ok ? [] : r.problems;
}

describe('spec.redis.tls rendering', () => {
  it('turns the plaintext port off and TLS on for clients, the bus and replication', () => {
    const { conf } = render({ tls: TLS });
    expect(conf).toMatch(/^port 0$/m);
    expect(conf).not.toMatch(/^port 6379$/m);
    for (const line of [
      'tls-port 6379',
      'tls-cert-file /etc/redis-tls/tls.crt',
      'tls-key-file /etc/redis-tls/tls.key',
      'tls-ca-cert-file /etc/redis-tls-ca/ca.crt',
      'tls-auth-clients optional',
      'tls-cluster yes',
      'tls-replication yes',
    ]) {
      expect(conf).toContain(`\n${line}\n`);
    }
    expect(render({}).conf).toMatch(/^port 6379$/m);
    expect(render({}).conf).not.toContain('tls-');
  });

  it('mounts the key pair into the Redis pods only, and the CA bundle into Redis and server pods', () => {
    const { objects } = render({ tls: TLS, exporter: { enabled: true } });
    const redis = pod(objects, 'StatefulSet');
    const server = pod(objects, 'Deployment');
    expect(redis.volumes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'tls',
          secret: expect.objectContaining({ secretName: 'demo-redis-tls' }),
        }),
        expect.objectContaining({
          name: 'tls-ca',
          configMap: expect.objectContaining({ name: 'demo-redis-ca' }),
        }),
      ]),
    );
    // No pod but Redis's mounts the Secret with the node key.
    for (const o of objects.filter((x) => x.kind === 'Deployment')) {
      expect(JSON.stringify(o)).not.toContain('demo-redis-tls');
    }
    expect(server.volumes).toContainEqual(
      expect.objectContaining({
        name: 'redis-tls-ca',
        configMap: expect.objectContaining({ name: 'demo-redis-ca' }),
      }),
    );
    const env = Object.fromEntries(server.containers[0]!.env!.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: '/etc/socketfleet/redis-tls/ca/ca.crt',
      REDIS_TLS_SERVER_NAME: 'demo-redis.apps.svc',
    });
    expect(env.REDIS_TLS_CERT_FILE).toBeUndefined();
    const [node, exporter] = redis.containers;
    expect(node!.readinessProbe!.exec.command[2]).toContain(
      'redis-cli --tls --cacert /etc/redis-tls-ca/ca.crt -p 6379 ping',
    );
    expect(exporter!.args).toEqual(
      expect.arrayContaining(['--redis.addr=rediss://127.0.0.1:6379', '--skip-tls-verification']),
    );
  });

  it('servers without spec.redis.tls get no TLS variables', () => {
    const env = pod(render({}).objects, 'Deployment').containers[0]!.env!.map((e) => e.name);
    expect(env.filter((n) => n.startsWith('REDIS_TLS'))).toEqual([]);
  });

  it('checks certificates against serverName, or <name>-redis.<namespace>.svc', () => {
    const c = (tls: Record<string, unknown>, namespace?: string) =>
      clusterFrom({
        ...manifest({ redis: { tls } }),
        metadata: { name: 'chat', ...(namespace ? { namespace } : {}) },
      });
    expect(redisTlsServerName(c(TLS, 'prod'))).toBe('chat-redis.prod.svc');
    expect(redisTlsServerName(c(TLS))).toBe('chat-redis.default.svc');
    expect(redisTlsServerName(c({ ...TLS, serverName: 'redis.example.internal' }))).toBe(
      'redis.example.internal',
    );
    expect(redisTlsServerName(clusterFrom(manifest({})))).toBeUndefined();
  });

  it('the exporter password map answers for both the plain and the TLS address', () => {
    const secret = buildRedisAuthSecret(
      clusterFrom(manifest({})),
      deriveRedisPasswords(Buffer.alloc(32, 1), 'uid'),
    ) as unknown as { stringData: Record<string, string> };
    const map = JSON.parse(secret.stringData['exporter-password-map.json']!) as Record<
      string,
      string
    >;
    expect(Object.keys(map).sort()).toEqual(['redis://127.0.0.1:6379', 'rediss://127.0.0.1:6379']);
  });

  it('socketfleet up runs plain TCP unless given local certificate files', () => {
    const cluster = clusterFrom(manifest({ redis: { tls: TLS } }));
    const plain = localRedisConf(cluster, 7001, 17001, '/tmp/x', undefined);
    expect(plain).toMatch(/^port 7001$/m);
    expect(plain).not.toContain('tls-');
    const tls = localRedisConf(cluster, 7001, 17001, '/tmp/x', undefined, {
      certFile: '/c/node.crt',
      keyFile: '/c/node.key',
      caFile: '/c/ca.crt',
    });
    expect(tls).toMatch(/^port 0$/m);
    expect(tls).toMatch(/^tls-port 7001$/m);
    expect(tls).toMatch(/^tls-cert-file \/c\/node.crt$/m);
    expect(tls).not.toContain('/etc/redis-tls');
  });
});

describe('spec.redis.tls validation', () => {
  it('names the missing or bad field in one sentence', () => {
    expect(problems({ tls: { caConfigMap: { name: 'ca' } } })).toEqual([
      'spec.redis.tls.secretName: is required',
    ]);
    expect(problems({ tls: { secretName: 'redis-tls' } })).toEqual([
      'spec.redis.tls.caConfigMap: is required',
    ]);
    expect(problems({ tls: { ...TLS, secretName: 'Bad_Name' } })).toEqual([
      'spec.redis.tls.secretName: must be a Secret name',
    ]);
    expect(problems({ tls: { ...TLS, caConfigMap: { name: 'ca', keys: 'x' } } })).toEqual([
      'spec.redis.tls.caConfigMap.keys: is not a known field',
    ]);
  });

  it('refuses tls together with an external cluster', () => {
    expect(problems({ tls: TLS, external: { nodes: [{ host: 'redis.example' }] } })).toEqual([
      `spec.redis.tls: ${REDIS_TLS_EXTERNAL_MESSAGE}`,
    ]);
  });

  it('puts the rules into the CRD for the API server, the toggle as a transition rule', async () => {
    const { RealtimeClusterSchema } = await import('../../operator/api/realtimecluster.js');
    const meta = RealtimeClusterSchema.shape.spec.unwrap().shape.redis.unwrap().meta() as {
      'x-kubernetes-validations': { rule: string; message: string }[];
    };
    const rules = meta['x-kubernetes-validations'];
    expect(rules).toContainEqual(
      expect.objectContaining({
        rule: 'has(self.tls) == has(oldSelf.tls)',
        message: REDIS_TLS_IMMUTABLE_MESSAGE,
      }),
    );
    expect(rules).toContainEqual(expect.objectContaining({ message: REDIS_TLS_EXTERNAL_MESSAGE }));
  });
});

describe('RedisCaReader', () => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  function reader(items: { data?: Record<string, string> }[] | Error) {
    const calls: { namespace: string | undefined; fieldSelector: string | undefined }[] = [];
    let now = 0;
    const r = new RedisCaReader(
      {
        list: (_info, namespace, _labels, fieldSelector) => {
          calls.push({ namespace, fieldSelector });
          if (items instanceof Error) return Promise.reject(items);
          return Promise.resolve({ items: items as never[], metadata: {} });
        },
      },
      () => now,
    );
    return { r, calls, advance: (ms: number) => (now += ms) };
  }

  it('lists the one ConfigMap by name (no get, no Secret) and caches it for 30 s', async () => {
    const { r, calls, advance } = reader([{ data: { 'ca.crt': PEM } }]);
    expect(await r.read('apps', 'demo-ca', 'ca.crt')).toEqual({ ok: true, pem: PEM });
    expect(await r.read('apps', 'demo-ca', 'ca.crt')).toEqual({ ok: true, pem: PEM });
    expect(calls).toEqual([{ namespace: 'apps', fieldSelector: 'metadata.name=demo-ca' }]);
    advance(30_000);
    await r.read('apps', 'demo-ca', 'ca.crt');
    expect(calls).toHaveLength(2);
  });

  it('says in one sentence what is wrong with the bundle', async () => {
    expect(await reader([]).r.read('apps', 'demo-ca', 'ca.crt')).toEqual({
      ok: false,
      problem:
        'spec.redis.tls.caConfigMap: ConfigMap apps/demo-ca does not exist; the operator cannot verify the Redis nodes without it.',
    });
    expect(await reader([{ data: { other: PEM } }]).r.read('apps', 'demo-ca', 'ca.crt')).toEqual({
      ok: false,
      problem:
        'spec.redis.tls.caConfigMap: ConfigMap apps/demo-ca has no PEM certificate under key ca.crt; the operator cannot verify the Redis nodes without it.',
    });
    const failed = await reader(new Error('forbidden')).r.read('apps', 'demo-ca', 'ca.crt');
    expect(failed).toEqual({
      ok: false,
      problem:
        'spec.redis.tls.caConfigMap: ConfigMap apps/demo-ca could not be read (forbidden); the operator cannot verify the Redis nodes without it.',
    });
  });
});
