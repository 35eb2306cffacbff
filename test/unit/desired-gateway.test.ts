import { describe, expect, it } from 'vitest';
import {
  buildGatewayConfigMap,
  buildGatewayDeployment,
  buildGatewayService,
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
    const cm = buildGatewayConfigMap(cluster, []) as unknown as { data: Record<string, string> };
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
