import { describe, expect, it } from 'vitest';
import {
  buildGatewayConfigMap,
  buildGatewayDeployment,
  buildGatewayService,
  buildGatewaySyncRole,
  buildGatewaySyncRoleBinding,
  buildGatewaySyncServiceAccount,
} from '../../operator/desired/gateway.js';
import { kubernetesNginxRuntime } from '../../operator/desired/nginx.js';
import { clusterFrom, manifest } from './helpers.js';

interface Probe {
  httpGet: { path: string; port: string };
  tcpSocket?: unknown;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}
interface Container {
  name: string;
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
}

function nginxContainer(spec: Record<string, unknown> = {}): Container {
  const d = buildGatewayDeployment(clusterFrom(manifest(spec))) as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  const c = d.spec.template.spec.containers.find((x) => x.name === 'nginx');
  if (!c) throw new Error('no nginx container');
  return c;
}

describe('gateway probes', () => {
  it('probe the listener the rendered conf opens for them, never the proxy port', () => {
    const cluster = clusterFrom(manifest({ gateway: { proxyProtocol: true } }));
    const c = nginxContainer({ gateway: { proxyProtocol: true } });
    const health = c.ports.find((p) => p.name === 'health');
    expect(health?.containerPort).toBe(kubernetesNginxRuntime(cluster).healthPort);
    const cm = buildGatewayConfigMap(cluster) as unknown as { data: Record<string, string> };
    const conf = cm.data['nginx.conf']!;
    expect(conf).toContain(`listen ${health!.containerPort};`);
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      expect(probe.tcpSocket).toBeUndefined();
      expect(probe.httpGet.port).toBe('health');
      expect(conf).toContain(`location = ${probe.httpGet.path} {`);
    }
  });

  it('take a busy nginx out of rotation long before they restart it', () => {
    const { readinessProbe: ready, livenessProbe: live } = nginxContainer();
    expect(live.httpGet.path).not.toBe(ready.httpGet.path);
    const unreadyAfter = ready.periodSeconds * ready.failureThreshold;
    const restartAfter = live.periodSeconds * live.failureThreshold;
    expect(unreadyAfter).toBeLessThanOrEqual(10);
    expect(restartAfter).toBeGreaterThanOrEqual(60);
    expect(live.timeoutSeconds).toBeGreaterThan(ready.timeoutSeconds);
  });

  it('keep the probe port out of the Service', () => {
    const svc = buildGatewayService(clusterFrom(manifest())) as unknown as {
      spec: { ports: { targetPort: string }[] };
    };
    expect(svc.spec.ports.map((p) => p.targetPort)).toEqual(['http']);
  });
});

interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken: boolean;
  shareProcessNamespace: boolean;
  containers: {
    name: string;
    args?: string[];
    ports?: { name: string; containerPort: number; protocol: string }[];
    command?: string[];
    securityContext: { runAsUser: number };
    volumeMounts: { name: string; mountPath: string }[];
  }[];
  volumes: { name: string; projected?: unknown }[];
}

describe('gateway sync sidecar', () => {
  const cluster = clusterFrom(manifest({ gateway: { balance: 'ip-hash' } }));
  const pod = (
    buildGatewayDeployment(cluster) as unknown as { spec: { template: { spec: PodSpec } } }
  ).spec.template.spec;

  it('follows the server Service with a Role that reads EndpointSlices and nothing else', () => {
    const role = buildGatewaySyncRole(cluster) as unknown as {
      rules: unknown[];
      metadata: { name: string };
    };
    expect(role.rules).toEqual([
      {
        apiGroups: ['discovery.k8s.io'],
        resources: ['endpointslices'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    const binding = buildGatewaySyncRoleBinding(cluster) as unknown as {
      roleRef: { name: string };
      subjects: { kind: string; name: string }[];
    };
    const sa = buildGatewaySyncServiceAccount(cluster);
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(binding.subjects).toMatchObject([{ kind: 'ServiceAccount', name: sa.metadata.name }]);
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
  });

  it('gives the token to the sidecar only, and runs it as nginx so it may signal the master', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.shareProcessNamespace).toBe(true);
    const nginx = pod.containers.find((c) => c.name === 'nginx')!;
    const sync = pod.containers.find((c) => c.name === 'sync')!;
    expect(nginx.volumeMounts.map((m) => m.name)).not.toContain('token');
    expect(sync.volumeMounts).toContainEqual({
      name: 'token',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    expect(pod.volumes.find((v) => v.name === 'token')?.projected).toBeDefined();
    expect(sync.securityContext.runAsUser).toBe(nginx.securityContext.runAsUser);
    expect(sync.args).toEqual([
      'gateway-sync',
      '--service=demo-server',
      '--balance=ip-hash',
      '--upstreams-file=/tmp/nginx/upstreams.conf',
      '--pid-file=/tmp/nginx/nginx.pid',
      '--leaving-grace-seconds=40',
      '--metrics-port=9114',
      '--nginx-log-port=5140',
    ]);
    expect(sync.ports).toEqual([{ name: 'sync-metrics', containerPort: 9114, protocol: 'TCP' }]);
    // nginx starts once the sidecar has written the file its conf includes.
    expect(nginx.command?.join(' ')).toContain('until [ -s /tmp/nginx/upstreams.conf ]');
  });
});
