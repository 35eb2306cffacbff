// What the API server itself refuses, from the generated CRD's CEL rules and the admission
// plugins the test control plane enables: host-wide sysctls, sysctls safe-sysctls mode cannot
// set, a persistence change (or spec.redis.tls turned on or off) on an existing cluster, and (OwnerReferencesPermissionEnforcement)
// blockOwnerDeletion without update on realtimeclusters/finalizers; and that it stores the
// gateway's TLS, limits and exporter fields with their defaults. About 15 s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  REDIS_TLS_EXTERNAL_MESSAGE,
  REDIS_TLS_IMMUTABLE_MESSAGE,
} from '../../operator/api/redis-tls.js';
import { startCluster, type Cluster } from '../cluster/harness.js';
import { find } from './support/kube.js';
import { createNamespace, installCrd } from './support/setup.js';

const ns = `e2e-api-${process.pid}`;
let cluster: Cluster;

function rtc(name: string, spec: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name, namespace: ns },
    spec,
  });
}

async function apply(yaml: string): Promise<{ code: number; stderr: string }> {
  return cluster.kubectl(['-n', ns, 'apply', '-f', '-'], yaml);
}

describe('API server validation', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, ns);
  });

  afterAll(async () => {
    if (cluster) {
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await cluster.stop();
    }
  });

  it('refuses sysctls that are not the pod network namespace, naming the field', async () => {
    for (const key of ['vm.max_map_count', 'kernel.pid_max', 'fs.file-max', 'net.core.rmem_max']) {
      const r = await apply(rtc('sysctl', { tuning: { sysctls: { [key]: '1' } } }));
      expect(r.code, key).not.toBe(0);
      expect(r.stderr, key).toContain('spec.tuning.sysctls');
      expect(r.stderr, key).toContain('must be a sysctl of the pod network namespace');
    }
    const ok = await apply(
      rtc('sysctl', { tuning: { sysctls: { 'net.core.somaxconn': '4096' } } }),
    );
    expect(ok.stderr).toBe('');
  });

  it('refuses a trusted proxy that is no IP address or CIDR (nginx would refuse it at reload)', async () => {
    for (const bad of ['10.0.0.300/8', '10.0.0.0/33', 'fd00::/129']) {
      const r = await apply(rtc('proxies', { gateway: { trustedProxies: ['10.0.0.0/8', bad] } }));
      expect(r.code, bad).not.toBe(0);
      expect(r.stderr, bad).toContain('spec.gateway.trustedProxies[1]');
      expect(r.stderr, bad).toContain('must be an IP address or CIDR');
    }
    const ok = await apply(
      rtc('proxies', { gateway: { trustedProxies: ['10.0.0.0/8', '192.168.1.7', 'fd00::/8'] } }),
    );
    expect(ok.stderr).toBe('');
  });

  it('safe-sysctls: refuses an explicit sysctl it cannot set, accepts the defaults and the kubelet-allowed route', async () => {
    const refused = await apply(
      rtc('safe', { tuning: { mode: 'safe-sysctls', sysctls: { 'net.core.somaxconn': '4096' } } }),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('spec.tuning.sysctls');
    expect(refused.stderr).toContain('cannot be set in safe-sysctls mode');
    expect((await apply(rtc('safe', { tuning: { mode: 'safe-sysctls' } }))).code).toBe(0);
    const allowed = await apply(
      rtc('safe-allowed', {
        tuning: {
          mode: 'safe-sysctls',
          sysctls: { 'net.core.somaxconn': '4096' },
          kubeletAllowedUnsafeSysctls: ['net.core.somaxconn'],
        },
      }),
    );
    expect(allowed.stderr).toBe('');
  });

  it('accepts gateway TLS, fractional handshake rates and the exporters; refuses a bad Secret name', async () => {
    const ok = await apply(
      rtc('gateway', {
        gateway: {
          tls: { secretName: 'gateway-tls', redirectHttp: false },
          limits: { handshakesPerSecondPerAddress: 0.5, connectionsPerAddress: 0 },
          exporter: { enabled: true },
        },
        redis: { exporter: { enabled: true } },
      }),
    );
    expect(ok.stderr).toBe('');
    const stored = await cluster.kubectl(['-n', ns, 'get', 'rtc', 'gateway', '-o', 'json']);
    const spec = (JSON.parse(stored.stdout) as { spec: { gateway: Record<string, unknown> } }).spec;
    // The API server's structural defaulting fills what the user left out, as zod does.
    expect(spec.gateway.limits).toEqual({
      connectionsPerAddress: 0,
      handshakesPerSecondPerAddress: 0.5,
      handshakeBurst: 400,
      clientHeaderTimeoutSeconds: 10,
      clientBodyTimeoutSeconds: 10,
    });
    expect(spec.gateway.tls).toEqual({ secretName: 'gateway-tls', redirectHttp: false, port: 443 });
    const bad = await apply(rtc('badtls', { gateway: { tls: { secretName: 'Bad_Name' } } }));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.gateway.tls.secretName');
  });

  it('refuses toggling persistence of an existing cluster, with the reason', async () => {
    expect((await apply(rtc('pv', { redis: { persistence: { enabled: false } } }))).code).toBe(0);
    const r = await apply(rtc('pv', { redis: { persistence: { enabled: true } } }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.redis.persistence.enabled');
    expect(r.stderr).toContain('cannot change on an existing cluster');
    // The retention policy is not part of the volume template: it may change.
    const retention = await apply(
      rtc('pv', { redis: { persistence: { retentionPolicy: { whenDeleted: 'Retain' } } } }),
    );
    expect(retention.stderr).toBe('');
  });

  it('spec.redis.tls: stored with its defaults, refused without secretName, with external, and as a toggle', async () => {
    const tls = { secretName: 'tls-redis-tls', caConfigMap: { name: 'tls-redis-ca' } };
    expect((await apply(rtc('tls', { redis: { tls } }))).stderr).toBe('');
    const stored = await cluster.kubectl(['-n', ns, 'get', 'rtc', 'tls', '-o', 'json']);
    const spec = (JSON.parse(stored.stdout) as { spec: { redis: Record<string, unknown> } }).spec;
    expect(spec.redis.tls).toEqual({
      ...tls,
      caConfigMap: { name: 'tls-redis-ca', key: 'ca.crt' },
    });
    // Off again on the same cluster: a TLS node and a plaintext node share no cluster bus.
    const off = await apply(rtc('tls', { redis: {} }));
    expect(off.code).not.toBe(0);
    expect(off.stderr).toContain('spec.redis.tls');
    expect(off.stderr).toContain(REDIS_TLS_IMMUTABLE_MESSAGE);
    expect((await apply(rtc('plain', { redis: {} }))).code).toBe(0);
    const on = await apply(rtc('plain', { redis: { tls } }));
    expect(on.code).not.toBe(0);
    expect(on.stderr).toContain(REDIS_TLS_IMMUTABLE_MESSAGE);
    const noSecret = await apply(rtc('tls2', { redis: { tls: { caConfigMap: { name: 'ca' } } } }));
    expect(noSecret.code).not.toBe(0);
    expect(noSecret.stderr).toContain('spec.redis.tls.secretName');
    const external = await apply(
      rtc('tls3', { redis: { tls, external: { nodes: [{ host: 'redis.example' }] } } }),
    );
    expect(external.code).not.toBe(0);
    expect(external.stderr).toContain(REDIS_TLS_EXTERNAL_MESSAGE);
  });

  it('blockOwnerDeletion needs update on realtimeclusters/finalizers (OwnerReferencesPermissionEnforcement)', async () => {
    const owner = await find(cluster, ns, 'realtimecluster', 'pv');
    const sa = 'owner-test';
    const kubeconfig = await cluster.serviceAccountKubeconfig(ns, sa);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: sa, namespace: ns },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create'] }],
      }) +
        '---\n' +
        stringify({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: sa, namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
        }),
    );
    const configMap = (name: string): string =>
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          namespace: ns,
          ownerReferences: [
            {
              apiVersion: 'socketfleet.dev/v1alpha1',
              kind: 'RealtimeCluster',
              name: 'pv',
              uid: owner!.metadata.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
      });
    const create = (name: string): Promise<{ code: number; stderr: string }> =>
      cluster.kubectl(['--kubeconfig', kubeconfig, 'create', '-f', '-'], configMap(name));
    const denied = await create('owned-1');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('cannot set blockOwnerDeletion');
    await cluster.kubectlOk([
      '-n',
      ns,
      'patch',
      'role',
      sa,
      '--type=json',
      '-p',
      JSON.stringify([
        {
          op: 'add',
          path: '/rules/-',
          value: {
            apiGroups: ['socketfleet.dev'],
            resources: ['realtimeclusters/finalizers'],
            verbs: ['update'],
          },
        },
      ]),
    ]);
    let allowed = await create('owned-2');
    // RBAC changes reach the authorizer within a moment.
    for (let i = 0; i < 20 && allowed.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      allowed = await create(`owned-2-${i}`);
    }
    expect(allowed.stderr).toBe('');
  });
});
