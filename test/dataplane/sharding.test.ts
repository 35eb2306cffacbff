import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connect } from './support/clients.js';
import { Fleet, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

const channel = (room: string): string => `socket.io#/#${room}#`;

// Proves the routing from Redis' side, not by trusting the code: who is subscribed on which
// master, and which master executed the publishes.
describe('room sharding over a Redis Cluster', () => {
  const fleet = new Fleet('sharding');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let masters: number[];

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3 });
    masters = await redis.masterPorts();
    servers = await Promise.all([fleet.server(redis), fleet.server(redis), fleet.server(redis)]);
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it("sends a room's traffic through the master of its slot only, and only to servers with members", async () => {
    const [A, B, C] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const [m0, m1] = masters as [number, number, number];
    const room = await redis.roomOn(m0, 'zero');
    const other = await redis.roomOn(m1, 'one');
    const [a, b, c] = await Promise.all([connect(A.url), connect(B.url), connect(C.url)]);
    const got = { a: collect(a), b: collect(b), c: collect(c) };
    await a.emitWithAck('join', room);
    await b.emitWithAck('join', room);
    // C subscribes to a room on another master, so it is an active server, just not in `room`.
    await c.emitWithAck('join', other);

    expect(await redis.shardNumSub(m0, channel(room))).toBe(2);
    expect(await redis.shardNumSub(m1, channel(room))).toBe(0);
    expect(await redis.shardNumSub(m1, channel(other))).toBe(1);
    expect(await redis.shardNumSub(m0, channel(other))).toBe(0);

    const calls = (): Promise<number[]> => Promise.all(masters.map((p) => redis.spublishCalls(p)));
    const before = await calls();
    const busBefore = await Promise.all(
      servers.map((s) => s.metric('socketfleet_bus_messages_in_total')),
    );
    const publishedBefore = await C.metric('socketfleet_bus_publishes_total');
    const N = 20;
    for (let i = 0; i < N; i++) {
      expect(await c.emitWithAck('publish', { room, data: i })).toEqual({ ok: true });
    }
    await until(
      'both members to get every message',
      () => got.a.length === N && got.b.length === N,
    );
    const after = await calls();
    expect(after[0]! - before[0]!).toBe(N);
    expect(after[1]! - before[1]!).toBe(0);
    expect(after[2]! - before[2]!).toBe(0);

    const busAfter = await Promise.all(
      servers.map((s) => s.metric('socketfleet_bus_messages_in_total')),
    );
    expect(busAfter[0]! - busBefore[0]!).toBe(N);
    expect(busAfter[1]! - busBefore[1]!).toBe(N);
    // The publishing server has no member: nothing came back to it over Redis.
    expect(busAfter[2]! - busBefore[2]!).toBe(0);
    expect(got.c).toHaveLength(0);
    expect((await C.metric('socketfleet_bus_publishes_total')) - publishedBefore).toBe(N);
  });

  it('gives a 20-character room name that cannot be a socket id its own channel, not the shared one', async () => {
    // The library sends any 20-character room to the namespace-wide channel, taking it for a
    // socket id; only names shaped like base64id can be one.
    const room = 'twenty.chars.room.04';
    expect(room).toHaveLength(20);
    const owner = await redis.slotOwnerOf(channel(room));
    const shared = await redis.slotOwnerOf('socket.io#/#');
    expect(owner).not.toBe(shared);
    const [x, y] = await Promise.all([connect(servers[0]!.url), connect(servers[1]!.url)]);
    const inbox = collect(y);
    await y.emitWithAck('join', room);
    const [before, sharedBefore] = [
      await redis.spublishCalls(owner),
      await redis.spublishCalls(shared),
    ];
    expect(await x.emitWithAck('publish', { room, data: 'twenty' })).toEqual({ ok: true });
    await until('the member to get it', () => inbox.length === 1);
    expect((await redis.spublishCalls(owner)) - before).toBe(1);
    expect((await redis.spublishCalls(shared)) - sharedBefore).toBe(0);
  });

  it('unsubscribes a server from a room when its last member leaves or disconnects', async () => {
    const m1 = masters[1]!;
    const room = await redis.roomOn(m1, 'leaving');
    const [x, y] = await Promise.all([connect(servers[0]!.url), connect(servers[1]!.url)]);
    await x.emitWithAck('join', room);
    await y.emitWithAck('join', room);
    expect(await redis.shardNumSub(m1, channel(room))).toBe(2);
    await x.emitWithAck('leave', room);
    await until(
      'one subscriber left',
      async () => (await redis.shardNumSub(m1, channel(room))) === 1,
    );
    y.close();
    await until(
      'no subscriber left',
      async () => (await redis.shardNumSub(m1, channel(room))) === 0,
    );
  });
});
