import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import { closeAllClients, connect, type Client } from './support/clients.js';
import { Fleet, until, type NginxProcess, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

const DRAIN_SECONDS = 2;

// What Kubernetes does on a rollout: SIGTERM the pod, readiness drops, the gateway drops the
// endpoint and reloads, and the drained clients reconnect to the remaining servers.
describe('SIGTERM drain', () => {
  const fleet = new Fleet('drain');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let nginx: NginxProcess;
  const parsed = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'drain' },
    spec: { replicas: 3, gateway: { balance: 'ip-hash' } },
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  const cluster = parsed.cluster;
  const render = (list: ServerProcess[]): string =>
    renderNginxConf(
      cluster,
      list.map((s) => ({ ip: '127.0.0.1', port: s.port })),
      nginx.runtime,
    );

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    servers = await Promise.all(
      [0, 1, 2].map(() => fleet.server(redis, { drainSeconds: DRAIN_SECONDS })),
    );
    nginx = await fleet.nginx((_port, runtime) =>
      renderNginxConf(
        cluster,
        servers.map((s) => ({ ip: '127.0.0.1', port: s.port })),
        runtime,
      ),
    );
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('stops being ready, spreads disconnects over the window, and clients reconnect elsewhere', async () => {
    const count = 30;
    const clients: Client[] = [];
    for (let i = 0; i < count; i++) {
      clients.push(
        await connect(nginx.url, {
          transports: ['websocket'],
          localAddress: `127.${40 + i}.${(i * 53) % 250}.1`,
          reconnection: true,
        }),
      );
    }
    const counts = await Promise.all(servers.map((s) => s.metric('socketfleet_connected_clients')));
    const victimIndex = counts.indexOf(Math.max(...counts));
    const victim = servers[victimIndex]!;
    const moved = counts[victimIndex]!;
    expect(moved).toBeGreaterThanOrEqual(3);

    const disconnectedAt: number[] = [];
    for (const c of clients) c.on('disconnect', () => disconnectedAt.push(Date.now()));
    const started = Date.now();
    victim.child.kill('SIGTERM');
    await until(
      'the draining server to report not ready',
      async () => (await victim.readyz()) === 503,
    );
    // The operator's reaction to readiness: the endpoint leaves the gateway.
    const rest = servers.filter((s) => s !== victim);
    await nginx.reload(render(rest));

    const exit = await victim.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    // Exits within the drain window plus the close margin, well inside a grace period.
    expect(Date.now() - started).toBeLessThan((DRAIN_SECONDS + 5) * 1000 + 5000);

    expect(disconnectedAt).toHaveLength(moved);
    const spread = Math.max(...disconnectedAt) - Math.min(...disconnectedAt);
    // Not a thundering herd: the disconnects cover at least half of the window.
    expect(spread).toBeGreaterThanOrEqual((DRAIN_SECONDS * 1000) / 2);

    await until('every client to be connected again', () => clients.every((c) => c.connected));
    const after = await Promise.all(rest.map((s) => s.metric('socketfleet_connected_clients')));
    expect(after.reduce((a, b) => a + b, 0)).toBe(count);
    expect(victim.logs()).toContain('"msg":"drain complete"');
  });
});
