import { describe, expect, it } from 'vitest';
import { ServerConfigSchema } from '../../server-image/src/config.js';
import { buildDesired } from '../../operator/desired/index.js';
import { redisClusterNodes } from '../../operator/desired/redis.js';
import { buildServerConfig } from '../../operator/desired/server-config.js';
import { clusterFrom, EXAMPLES, exampleCluster, manifest } from './helpers.js';

describe('server config', () => {
  it.each(EXAMPLES)(
    'the server.json built for examples/%s.yaml parses with ServerConfigSchema',
    (name) => {
      const cluster = exampleCluster(name);
      const cm = buildDesired(cluster).objects.find(
        (o) =>
          o.kind === 'ConfigMap' && o.metadata.name === `${cluster.metadata.name}-server-config`,
      ) as unknown as { data: Record<string, string> };
      const parsed = ServerConfigSchema.parse(JSON.parse(cm.data['server.json']!));
      expect(parsed.redis.nodes.length).toBeGreaterThanOrEqual(cluster.spec.redis.shards);
      expect(parsed.parser).toBe(cluster.spec.socketio.parser);
      expect(parsed.pingIntervalMs).toBe(cluster.spec.socketio.pingIntervalMs);
      expect(parsed.drainSeconds).toBe(cluster.spec.socketio.drainSeconds);
      expect(parsed.port).toBe(3000);
      expect(parsed.opsPort).toBe(9090);
    },
  );

  it('passes connection state recovery on, and leaves it out when off (no config-hash change)', () => {
    const off = buildServerConfig(clusterFrom(manifest()), []);
    expect(off).not.toHaveProperty('connectionStateRecovery');
    expect(
      ServerConfigSchema.parse({ ...off, redis: { nodes: [{ host: 'r' }] } })
        .connectionStateRecovery,
    ).toEqual({
      enabled: false,
      maxDisconnectionSeconds: 120,
    });
    const on = buildServerConfig(
      clusterFrom(
        manifest({
          socketio: { connectionStateRecovery: { enabled: true, maxDisconnectionSeconds: 30 } },
        }),
      ),
      [],
    );
    expect(on.connectionStateRecovery).toEqual({ enabled: true, maxDisconnectionSeconds: 30 });
  });

  it("seeds the Redis Cluster with every shard's pods by their stable DNS names", () => {
    const c = clusterFrom({
      ...manifest({ redis: { shards: 3 } }),
      metadata: { name: 'chat', namespace: 'rt' },
    });
    const hosts = redisClusterNodes(c).map((n) => n.host);
    for (const shard of [0, 1, 2]) {
      expect(hosts).toContain(`chat-redis-${shard}-0.chat-redis-${shard}.rt.svc`);
    }
    expect(new Set(redisClusterNodes(c).map((n) => n.port))).toEqual(new Set([6379]));
    expect(redisClusterNodes(clusterFrom(manifest()))[0]!.host).toBe('demo-redis-0-0.demo-redis-0');
  });

  it('takes any node list, as the local runtime needs', () => {
    const c = clusterFrom(
      manifest({ socketio: { transports: ['websocket'], corsOrigins: ['https://a.example'] } }),
    );
    const cfg = ServerConfigSchema.parse(
      buildServerConfig(c, [
        { host: '127.0.0.1', port: 7001 },
        { host: '127.0.0.1', port: 7002 },
      ]),
    );
    expect(cfg.redis.nodes).toEqual([
      { host: '127.0.0.1', port: 7001 },
      { host: '127.0.0.1', port: 7002 },
    ]);
    expect(cfg.transports).toEqual(['websocket']);
    expect(cfg.corsOrigins).toEqual(['https://a.example']);
    expect(JSON.stringify(cfg)).not.toMatch(/password/i);
  });
});
