import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashRing } from '../../server-image/src/adapter/ring.js';
import { closeAllClients, collect, connect } from './support/clients.js';
import { Fleet, until, type RedisShard, type ServerProcess } from './support/fleet.js';

const channel = (room: string): string => `socket.io#/#${room}#`;

/** First room name `<prefix>-<i>` that the ring puts on `shard`. */
function roomOnShard(ring: HashRing, shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (ring.shardFor(`${prefix}-${i}`) === shard) return `${prefix}-${i}`;
}

async function shardNumSub(shard: RedisShard, room: string): Promise<number> {
  const reply = (await shard.client().call('PUBSUB', 'SHARDNUMSUB', channel(room))) as [
    string,
    number,
  ];
  return Number(reply[1]);
}

async function spublishCalls(shard: RedisShard): Promise<number> {
  const info = await shard.client().info('commandstats');
  const m = /cmdstat_spublish:calls=(\d+)/.exec(info);
  return m ? Number(m[1]) : 0;
}

// Proves the routing from Redis' side, not by trusting the code: who is subscribed where, and
// which shard executed the publishes.
describe('room sharding', () => {
  const fleet = new Fleet('sharding');
  let shards: RedisShard[];
  let servers: ServerProcess[];
  const ring = new HashRing(2);

  beforeAll(async () => {
    shards = [await fleet.redis(), await fleet.redis()];
    servers = await Promise.all([fleet.server(shards), fleet.server(shards), fleet.server(shards)]);
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it("sends a room's traffic through its own shard only, and only to servers with members", async () => {
    const [A, B, C] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const room = roomOnShard(ring, 0, 'zero');
    const other = roomOnShard(ring, 1, 'one');
    const [a, b, c] = await Promise.all([connect(A.url), connect(B.url), connect(C.url)]);
    const got = { a: collect(a), b: collect(b), c: collect(c) };
    await a.emitWithAck('join', room);
    await b.emitWithAck('join', room);
    // C subscribes to a room on the other shard, so it is an active server, just not in `room`.
    await c.emitWithAck('join', other);

    expect(await shardNumSub(shards[0]!, room)).toBe(2);
    expect(await shardNumSub(shards[1]!, room)).toBe(0);
    expect(await shardNumSub(shards[1]!, other)).toBe(1);
    expect(await shardNumSub(shards[0]!, other)).toBe(0);

    const before = await Promise.all(shards.map(spublishCalls));
    const busBefore = await Promise.all(
      servers.map((s) => s.metric('socketfleet_bus_messages_in_total')),
    );
    const cBefore = await Promise.all(
      ['0', '1'].map((shard) => C.metric('socketfleet_broadcasts_total', { shard })),
    );
    const N = 20;
    for (let i = 0; i < N; i++) {
      expect(await c.emitWithAck('publish', { room, data: i })).toEqual({ ok: true });
    }
    await until(
      'both members to get every message',
      () => got.a.length === N && got.b.length === N,
    );
    const after = await Promise.all(shards.map(spublishCalls));
    expect(after[0]! - before[0]!).toBe(N);
    expect(after[1]! - before[1]!).toBe(0);

    const busAfter = await Promise.all(
      servers.map((s) => s.metric('socketfleet_bus_messages_in_total')),
    );
    expect(busAfter[0]! - busBefore[0]!).toBe(N);
    expect(busAfter[1]! - busBefore[1]!).toBe(N);
    // The publishing server has no member: nothing came back to it over Redis.
    expect(busAfter[2]! - busBefore[2]!).toBe(0);
    expect(got.c).toHaveLength(0);

    expect((await C.metric('socketfleet_broadcasts_total', { shard: '0' })) - cBefore[0]!).toBe(N);
    expect((await C.metric('socketfleet_broadcasts_total', { shard: '1' })) - cBefore[1]!).toBe(0);
  });

  it('unsubscribes a server from a room when its last member leaves or disconnects', async () => {
    const room = roomOnShard(ring, 1, 'leaving');
    const [x, y] = await Promise.all([connect(servers[0]!.url), connect(servers[1]!.url)]);
    await x.emitWithAck('join', room);
    await y.emitWithAck('join', room);
    expect(await shardNumSub(shards[1]!, room)).toBe(2);
    await x.emitWithAck('leave', room);
    await until('one subscriber left', async () => (await shardNumSub(shards[1]!, room)) === 1);
    y.close();
    await until('no subscriber left', async () => (await shardNumSub(shards[1]!, room)) === 0);
  });
});
