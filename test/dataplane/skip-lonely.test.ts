import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients, collect, connect, type Client } from './support/clients.js';
import { Fleet, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

const dataOf = (m: unknown): unknown => (m as { data: unknown }).data;

// The skipLonelyRooms fast path: a room broadcast stays off Redis while no other server has
// members in the room. These tests check that it really skips, and that it never costs a
// member a message when joins and leaves race with publishes.
describe('skipping Redis for rooms with members on one server only', () => {
  const fleet = new Fleet('skip-lonely');
  let redis: RedisClusterFixture;
  let A: ServerProcess;
  let B: ServerProcess;
  let C: ServerProcess;

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    // C does not skip itself but still takes part in the membership handshake.
    [A, B, C] = await Promise.all([
      fleet.server(redis, { eventsPerSecond: 100_000 }),
      fleet.server(redis, { eventsPerSecond: 100_000 }),
      fleet.server(redis, { eventsPerSecond: 100_000, fastPaths: { skipLonelyRooms: false } }),
    ]);
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('keeps a one-server room off Redis, and publishes again once another server has a member', async () => {
    const a = await connect(A.url);
    const inboxA = collect(a);
    expect(await a.emitWithAck('join', 'solo')).toEqual({
      ok: true,
      room: 'solo',
      subscribed: true,
    });
    const skippedBefore = await A.metric('socketfleet_publishes_skipped_total');
    const callsBefore = await redis.totalSpublishCalls();
    for (let i = 0; i < 10; i++)
      expect(await a.emitWithAck('publish', { room: 'solo', data: i })).toEqual({ ok: true });
    await until('the local member to get all 10', () => inboxA.length === 10);
    expect((await A.metric('socketfleet_publishes_skipped_total')) - skippedBefore).toBe(10);
    expect((await redis.totalSpublishCalls()) - callsBefore).toBe(0);

    const b = await connect(B.url);
    const inboxB = collect(b);
    expect(await b.emitWithAck('join', 'solo')).toMatchObject({ ok: true, subscribed: true });
    await a.emitWithAck('publish', { room: 'solo', data: 'shared' });
    await until('the member on the other server to get it', () =>
      inboxB.map(dataOf).includes('shared'),
    );
    expect((await A.metric('socketfleet_publishes_skipped_total')) - skippedBefore).toBe(10);

    // When B's member leaves, A learns it (BYE) and goes back to skipping.
    await b.emitWithAck('leave', 'solo');
    await until(
      'A to skip again',
      async () => {
        await a.emitWithAck('publish', { room: 'solo', data: 'probe' });
        return (await A.metric('socketfleet_publishes_skipped_total')) - skippedBefore > 10;
      },
      10_000,
    );
  });

  it('never loses a message to a member whose join was acknowledged, while joins and leaves race with publishes', async () => {
    const room = 'race';
    const publisher = await connect(A.url);
    await publisher.emitWithAck('join', room);
    // Background publishes from A, not awaited, racing with every join and leave below.
    let stop = false;
    let seq = 0;
    const background = (async () => {
      while (!stop) {
        publisher.emit('publish', { room, data: `bg-${seq++}` });
        await sleep(2);
      }
    })();
    // Churn on C: its member comes and goes, so A keeps learning and forgetting servers.
    const churner = await connect(C.url);
    const churn = (async () => {
      while (!stop) {
        await churner.emitWithAck('join', room);
        await sleep(5);
        await churner.emitWithAck('leave', room);
        await sleep(5);
      }
    })();

    const rounds = 25;
    const joiners: Client[] = [];
    for (let k = 0; k < rounds; k++) {
      const server = k % 2 === 0 ? B : C;
      const joiner = await connect(server.url);
      joiners.push(joiner);
      const inbox = collect(joiner);
      expect(await joiner.emitWithAck('join', room)).toMatchObject({ ok: true, subscribed: true });
      // Caused after the join ack, so it must arrive, skipped or not.
      expect(await publisher.emitWithAck('publish', { room, data: `marker-${k}` })).toEqual({
        ok: true,
      });
      await until(
        `marker-${k} at the joiner on ${server.name}`,
        () => inbox.map(dataOf).includes(`marker-${k}`),
        10_000,
      );
      await joiner.emitWithAck('leave', room);
      joiner.close();
    }
    stop = true;
    await Promise.all([background, churn]);
    // The race really exercised the fast path: A skipped whenever it was alone in the room.
    expect(await A.metric('socketfleet_publishes_skipped_total')).toBeGreaterThan(0);
    expect(await A.metric('socketfleet_room_handshakes_total', { result: 'timeout' })).toBe(0);
  });
});
