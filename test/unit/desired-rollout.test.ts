import { describe, expect, it } from 'vitest';
import { buildDesired, type KubeObject } from '../../operator/desired/index.js';
import { clusterFrom, manifest } from './helpers.js';

interface Template {
  metadata: { annotations: Record<string, string> };
}

function objects(spec: Record<string, unknown>): KubeObject[] {
  return buildDesired(clusterFrom(manifest(spec))).objects;
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

const template = (objs: KubeObject[]): string =>
  JSON.stringify(
    (
      objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'demo-gateway')?.spec as {
        template: unknown;
      }
    ).template,
  );

describe('what rolls pods and what only reloads nginx', () => {
  it('holds no endpoints: server pods coming and going change no object of the operator', () => {
    // The gateway's sync sidecar renders the upstreams in the pod; the ConfigMap only includes them.
    expect(nginxConf(objects({}))).toContain('include /tmp/nginx/upstreams.conf;');
    expect(nginxConf(objects({}))).not.toContain('upstream socketfleet_servers');
  });

  it('a change to the server config rolls the servers', () => {
    const base = serverHash(objects({}));
    expect(serverHash(objects({ socketio: { parser: 'json' } }))).not.toBe(base);
    expect(serverHash(objects({ socketio: { eventsPerSecond: 5 } }))).not.toBe(base);
    expect(serverHash(objects({ replicas: 9 }))).toBe(base);
    expect(serverHash(objects({ gateway: { workerConnections: 2048 } }))).toBe(base);
  });

  it('a change of spec.redis.shards reshards online: the servers keep running', () => {
    const base = objects({ redis: { shards: 2 } });
    for (const shards of [1, 3, 8]) {
      const changed = objects({ redis: { shards } });
      expect(serverHash(changed)).toBe(serverHash(base));
      // Only the seed list in server.json differs; servers that start later read the new one.
      const nodes = (objs: KubeObject[]): unknown =>
        (
          JSON.parse(
            (
              objs.find((o) => o.metadata.name === 'demo-server-config') as unknown as {
                data: Record<string, string>;
              }
            ).data['server.json']!,
          ) as { redis: { nodes: unknown[] } }
        ).redis.nodes.length;
      expect(nodes(changed)).toBe(shards * 2);
    }
    // The rest of the Redis spec still rolls what it should: an external cluster's seeds do.
    const external = (host: string): KubeObject[] =>
      objects({ redis: { external: { nodes: [{ host, port: 6379 }] } } });
    expect(serverHash(external('a.example'))).not.toBe(serverHash(external('b.example')));
  });

  it('a static nginx change rolls the gateway', () => {
    const base = gatewayHash(objects({}));
    expect(gatewayHash(objects({ gateway: { workerConnections: 2048 } }))).not.toBe(base);
    // The balance mode is the sidecar's (it renders the upstream block): the template changes.
    expect(template(objects({ gateway: { balance: 'ip-hash' } }))).not.toBe(template(objects({})));
    expect(gatewayHash(objects({ replicas: 9 }))).toBe(base);
    expect(template(objects({ replicas: 9 }))).toBe(template(objects({})));
  });

  it('is deterministic', () => {
    expect(JSON.stringify(objects({}))).toBe(JSON.stringify(objects({})));
  });
});
