// The slot map is refreshed every 10 s while the topology is quiet (bus.ts). That is safe only if
// a server that never touched a moved slot still subscribes at its new owner when a room there
// gets its first member: SSUBSCRIBE sent to the old owner must be answered MOVED and followed.
// No periodic refresh at all here, so nothing but that answer can tell the bus.
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterBus } from '../../server-image/src/adapter/bus.js';
import { channelOf } from '../../server-image/src/adapter/recovery-keys.js';
import { Fleet, until } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

describe('subscribing in a slot that moved while the bus did not look', () => {
  const fleet = new Fleet('bus-moved');
  let redis: RedisClusterFixture;
  const buses: ClusterBus[] = [];

  const bus = async (): Promise<ClusterBus> => {
    const login = redis.serverLogin();
    const b = new ClusterBus({
      nodes: redis.seeds(),
      username: login.redisUsername,
      password: login.redisPassword,
      timings: { slotsRefreshIntervalMs: 3_600_000, slotsRefreshIdleMs: 3_600_000 },
    });
    buses.push(b);
    await until('the bus to have a slot map', () => b.hasBeenReady);
    return b;
  };

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 2, replicas: 0 });
  });

  afterAll(async () => {
    for (const b of buses) await b.close();
    await fleet.stopAll();
  });

  it('subscribes at the new owner and receives, then publishes there too', async () => {
    const subscriber = await bus();
    const publisher = await bus();
    const channel = channelOf('/', 'moved-while-away');
    const stale = subscriber.ownerOf(channel);
    const added = await redis.addMaster();
    await redis.moveSlot(calculateSlot(channel), added.port);
    // The subscriber's map still names the old owner.
    expect(subscriber.ownerOf(channel)).toBe(stale);

    const received: string[] = [];
    subscriber.on('smessageBuffer', (c: Buffer, m: Buffer) => {
      if (c.toString() === channel) received.push(m.toString());
    });
    await subscriber.ssubscribe(channel);
    expect(await subscriber.whenSubscribed(channel, 10_000)).toBe(true);
    expect(await redis.shardNumSub(added.port, channel)).toBe(1);

    // The publisher's map is stale too: its MOVED is followed (or held and re-sent).
    expect(await publisher.spublish(channel, 'after the move')).toBe(1);
    await until('the message to arrive', () => received.length === 1);
    expect(received).toEqual(['after the move']);
    expect(subscriber.ownerOf(channel)).toBe(`localhost:${added.port}`);
  });
});
