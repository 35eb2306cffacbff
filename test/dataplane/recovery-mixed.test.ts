import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connect } from './support/clients.js';
import { Fleet, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

// The rollout that switches connection state recovery on or off runs pods with and without it
// side by side: each must deliver the other's broadcasts (pods with it publish framed messages).
describe('servers with and without connection state recovery in one cluster', () => {
  const fleet = new Fleet('recovery-mixed');
  let redis: RedisClusterFixture;
  let on: ServerProcess;
  let off: ServerProcess;

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 0 });
    on = await fleet.server(redis, {
      logLevel: 'warn',
      connectionStateRecovery: { enabled: true, maxDisconnectionSeconds: 30 },
    });
    off = await fleet.server(redis, { logLevel: 'warn' });
  }, 60_000);

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('every broadcast reaches the members on both kinds of server', async () => {
    const a = await connect(on.url);
    const b = await connect(off.url);
    for (const c of [a, b]) {
      const reply = (await c.emitWithAck('join', 'mixed-room')) as { ok: boolean };
      expect(reply.ok).toBe(true);
    }
    const gotA = collect(a);
    const gotB = collect(b);
    for (let i = 0; i < 20; i++) {
      a.emit('publish', { room: 'mixed-room', data: { from: 'on', i } });
      b.emit('publish', { room: 'mixed-room', data: { from: 'off', i } });
      await sleep(10);
    }
    await until(
      'both clients to have all 40',
      () => gotA.length >= 40 && gotB.length >= 40,
      15_000,
    ).catch(() => undefined);
    await sleep(300);
    console.log(JSON.stringify({ onServerClient: gotA.length, offServerClient: gotB.length }));
    expect(gotA).toHaveLength(40);
    expect(gotB).toHaveLength(40);
  }, 60_000);
});
