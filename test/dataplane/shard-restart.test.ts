import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashRing } from '../../server-image/src/adapter/ring.js';
import { closeAllClients, collect, connect } from './support/clients.js';
import { Fleet, sleep, until, type RedisShard, type ServerProcess } from './support/fleet.js';

function roomOnShard(ring: HashRing, shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (ring.shardFor(`${prefix}-${i}`) === shard) return `${prefix}-${i}`;
}

describe('a Redis shard restart', () => {
  const fleet = new Fleet('restart');
  let shards: RedisShard[];
  let servers: ServerProcess[];

  beforeAll(async () => {
    shards = [await fleet.redis(), await fleet.redis()];
    servers = await Promise.all([fleet.server(shards), fleet.server(shards)]);
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('is survived: loss is reported and counted during the outage, and rooms re-subscribe afterwards', async () => {
    const ring = new HashRing(2);
    const room = roomOnShard(ring, 1, 'fragile');
    const steady = roomOnShard(ring, 0, 'steady');
    const [A, B] = servers as [ServerProcess, ServerProcess];
    const [a, b] = await Promise.all([connect(A.url), connect(B.url)]);
    const got = { a: collect(a), b: collect(b) };
    for (const c of [a, b]) {
      await c.emitWithAck('join', room);
      await c.emitWithAck('join', steady);
    }

    await shards[1]!.kill();
    await until('both servers to report not ready', async () =>
      (await Promise.all(servers.map((s) => s.readyz()))).every((code) => code === 503),
    );
    expect(await A.metric('socketfleet_redis_shard_up', { shard: '1' })).toBe(0);

    // The room on the dead shard: the publisher is told, its local member still gets the message.
    expect(await a.emitWithAck('publish', { room, data: 'during-outage' })).toEqual({
      ok: false,
      error: `room "${room}" lives on Redis shard 1, which is unavailable; only clients on this server received the message.`,
    });
    expect(
      await A.metric('socketfleet_publishes_lost_total', { shard: '1' }),
    ).toBeGreaterThanOrEqual(1);
    // The other shard keeps carrying its rooms.
    expect(await a.emitWithAck('publish', { room: steady, data: 'steady' })).toEqual({ ok: true });
    await until('cross-server delivery on the healthy shard', () =>
      got.b.some((m) => (m as { data: unknown }).data === 'steady'),
    );

    await shards[1]!.restart();
    await until(
      'both servers ready again',
      async () => (await Promise.all(servers.map((s) => s.readyz()))).every((code) => code === 200),
      60_000,
    );
    // Re-subscription, seen from the restarted Redis.
    await until('both servers to re-subscribe to the room', async () => {
      const reply = (await shards[1]!
        .client()
        .call('PUBSUB', 'SHARDNUMSUB', `socket.io#/#${room}#`)) as [string, number];
      return Number(reply[1]) === 2;
    });
    expect(await a.emitWithAck('publish', { room, data: 'after-restart' })).toEqual({ ok: true });
    await until('delivery across servers after the restart', () =>
      got.b.some((m) => (m as { data: unknown }).data === 'after-restart'),
    );
    await sleep(200);
    const seenByB = got.b.map((m) => (m as { data: unknown }).data);
    expect(seenByB).not.toContain('during-outage');
    expect(got.a.map((m) => (m as { data: unknown }).data)).toEqual([
      'during-outage',
      'steady',
      'after-restart',
    ]);
    // Clients never noticed: the outage was between servers and Redis.
    expect(a.connected && b.connected).toBe(true);
  });
});
