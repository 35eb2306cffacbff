import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import {
  closeAllClients,
  collect,
  connect,
  initialTransport,
  type Client,
} from './support/clients.js';
import { Fleet, until, type NginxProcess, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

function cluster(): RealtimeCluster {
  const parsed = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'dataplane' },
    spec: { replicas: 3, redis: { shards: 2 }, gateway: { balance: 'ip-hash' } },
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.cluster;
}

// Socket.IO starts on HTTP long-polling and upgrades to WebSocket: every request of a session must
// reach the server that holds it. nginx runs the conf the operator renders for these endpoints.
describe('sticky sessions through the nginx gateway', () => {
  const fleet = new Fleet('gateway');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let nginx: NginxProcess;

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    servers = await Promise.all([fleet.server(redis), fleet.server(redis), fleet.server(redis)]);
    const c = cluster();
    const endpoints = servers.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    nginx = await fleet.nginx((_port, runtime) => renderNginxConf(c, endpoints, runtime));
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('keeps polling-then-upgrade sessions of clients from distinct /24s on one server each', async () => {
    const count = 24;
    const clients: Client[] = [];
    for (let i = 0; i < count; i++) {
      // ip_hash keys on the first three octets, so each client gets its own /24.
      const localAddress = `127.${20 + i}.${(i * 37) % 250}.1`;
      const client = await connect(nginx.url, {
        transports: ['polling', 'websocket'],
        localAddress,
      });
      // The handshake and the namespace CONNECT ran over long-polling before the upgrade.
      expect(initialTransport(client)).toBe('polling');
      expect(await client.emitWithAck('join', 'sticky')).toMatchObject({ ok: true });
      clients.push(client);
    }
    await until('every client to upgrade to websocket', () =>
      clients.every((c) => c.io.engine.transport.name === 'websocket'),
    );
    const inboxes = clients.map((c) => collect(c));
    const counts = await Promise.all(servers.map((s) => s.metric('socketfleet_connected_clients')));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(count);
    // Distinct /24s spread over the servers (deterministic for these addresses).
    expect(counts.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);

    expect(await clients[0]!.emitWithAck('publish', { room: 'sticky', data: 'over-ws' })).toEqual({
      ok: true,
    });
    await until('every member to receive through the gateway', () =>
      inboxes.every((m) => m.length === 1),
    );
    // A session that had jumped servers would have been refused ("Session ID unknown") and closed.
    expect(clients.every((c) => c.connected)).toBe(true);
  });

  it('sends clients of one /24 to the same server', async () => {
    const before = await Promise.all(servers.map((s) => s.metric('socketfleet_connected_clients')));
    for (let host = 1; host <= 5; host++) {
      await connect(nginx.url, {
        transports: ['polling', 'websocket'],
        localAddress: `127.200.9.${host}`,
      });
    }
    const after = await Promise.all(servers.map((s) => s.metric('socketfleet_connected_clients')));
    const grew = after.map((n, i) => n - before[i]!);
    expect(grew.sort()).toEqual([0, 0, 5]);
  });

  async function outcomes(tag: number): Promise<string[]> {
    return Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        connect(nginx.url, {
          transports: ['polling', 'websocket'],
          localAddress: `127.${tag}.${i}.1`,
        })
          .then((client) => client.timeout(5000).emitWithAck('join', 'control'))
          .then(
            () => 'ok',
            () => 'broken',
          ),
      ),
    );
  }

  it('keeps sessions whole by the server tag in their id even with no sticky hash', async () => {
    const endpoints = servers.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    await nginx.reload(
      renderNginxConf(cluster(), endpoints, nginx.runtime).replace('ip_hash;', '# round robin'),
    );
    expect(await outcomes(151)).toEqual(Array.from({ length: 8 }, () => 'ok'));
  });

  it('control: without ip_hash and the session routes the same sessions break, so the tests above can fail', async () => {
    const endpoints = servers.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    await nginx.reload(
      renderNginxConf(cluster(), endpoints, nginx.runtime)
        .replace('ip_hash;', '# round robin')
        .replace(
          'proxy_pass http://$socketfleet_session_upstream;',
          'proxy_pass http://socketfleet_servers;',
        ),
    );
    expect(await outcomes(150)).toContain('broken');
  });
});
