import { describe, expect, it } from 'vitest';
import { buildDesired, type Endpoint, type KubeObject } from '../../operator/desired/index.js';
import { clusterFrom, manifest } from './helpers.js';

interface Template {
  metadata: { annotations: Record<string, string> };
}

function objects(spec: Record<string, unknown>, endpoints: Endpoint[] = []): KubeObject[] {
  return buildDesired(clusterFrom(manifest(spec)), { serverEndpoints: endpoints }).objects;
}

function annotation(objs: KubeObject[], name: string, key: string): string {
  const o = objs.find((x) => x.kind === 'Deployment' && x.metadata.name === name);
  const template = (o?.spec as { template: Template } | undefined)?.template;
  const value = template?.metadata.annotations[key];
  if (!value) throw new Error(`no ${key} on ${name}`);
  return value;
}

const serverHash = (objs: KubeObject[]): string =>
  annotation(objs, 'demo-server', 'socketfleet.dev/config-hash');
const gatewayHash = (objs: KubeObject[]): string =>
  annotation(objs, 'demo-gateway', 'socketfleet.dev/gateway-config-hash');
const nginxConf = (objs: KubeObject[]): string =>
  (
    objs.find((o) => o.metadata.name === 'demo-gateway-nginx') as unknown as {
      data: Record<string, string>;
    }
  ).data['nginx.conf']!;

const ready = [
  { ip: '10.0.0.1', port: 3000 },
  { ip: '10.0.0.2', port: 3000 },
];

describe('what rolls pods and what only reloads nginx', () => {
  it('new ready endpoints change nginx.conf but roll no pod', () => {
    const before = objects({});
    const after = objects({}, ready);
    expect(nginxConf(after)).not.toBe(nginxConf(before));
    expect(nginxConf(after)).toContain('server 10.0.0.2:3000');
    expect(gatewayHash(after)).toBe(gatewayHash(before));
    expect(serverHash(after)).toBe(serverHash(before));
  });

  it('a change to the server config rolls the servers', () => {
    const base = serverHash(objects({}));
    expect(serverHash(objects({ redis: { shards: 2 } }))).not.toBe(base);
    expect(serverHash(objects({ socketio: { parser: 'json' } }))).not.toBe(base);
    expect(serverHash(objects({ socketio: { eventsPerSecond: 5 } }))).not.toBe(base);
    expect(serverHash(objects({ replicas: 9 }))).toBe(base);
    expect(serverHash(objects({ gateway: { workerConnections: 2048 } }))).toBe(base);
  });

  it('a static nginx change rolls the gateway', () => {
    const base = gatewayHash(objects({}));
    expect(gatewayHash(objects({ gateway: { workerConnections: 2048 } }))).not.toBe(base);
    expect(gatewayHash(objects({ gateway: { balance: 'ip-hash' } }))).not.toBe(base);
    expect(gatewayHash(objects({ replicas: 9 }))).toBe(base);
  });

  it('is deterministic', () => {
    expect(JSON.stringify(objects({}, ready))).toBe(
      JSON.stringify(objects({}, [...ready].reverse())),
    );
  });
});
