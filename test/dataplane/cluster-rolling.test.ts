import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllClients } from './support/clients.js';
import { Fleet, sleep, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import { busCounters, counterDelta, RoomTraffic, watchReadiness } from './support/traffic.js';

// A rolling restart of every Redis node under traffic, in the order the operator uses for an
// image, config or resource change: per shard, the replica first, then a manual failover onto
// it once it is in sync (CLUSTER FAILOVER waits for the replica to catch up, so no write is
// lost), then the old master, which comes back as a replica.
describe('rolling restart of a Redis Cluster under traffic', () => {
  const fleet = new Fleet('rolling');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
    servers = await Promise.all([0, 1, 2].map(() => fleet.server(redis)));
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('replicas first, then a manual failover, then the old master: exactly zero loss, no server unready', async () => {
    const masters = await redis.masterPorts();
    const rooms: string[] = [];
    for (const m of masters)
      for (let i = 0; i < 6; i++) rooms.push(await redis.roomOn(m, `roll-${m}-${i}`));
    const traffic = await RoomTraffic.start(servers, rooms, { perRoomPerSecond: 10 });
    const before = await busCounters(servers);
    const readiness = watchReadiness(servers);
    await sleep(1500);

    const steps: { step: string; ms: number }[] = [];
    const timed = async (step: string, run: () => Promise<void>): Promise<void> => {
      const started = Date.now();
      await run();
      steps.push({ step, ms: Date.now() - started });
    };
    for (const shard of await redis.shards()) {
      const replica = redis.nodes.get(shard.replicas[0]!)!;
      const master = redis.nodes.get(shard.master)!;
      await timed(`restart replica ${replica.port}`, async () => {
        await replica.stop();
        await replica.restart();
        await redis.waitHealthy();
      });
      await timed(`failover ${shard.master} -> ${replica.port}`, () =>
        redis.failover(replica.port),
      );
      await timed(`restart old master ${master.port}`, async () => {
        await master.stop();
        await master.restart();
        await redis.waitHealthy();
      });
    }
    await sleep(2000);
    await traffic.stop();
    const unready = await readiness.stop();
    const counters = counterDelta(await busCounters(servers), before);
    const report = traffic.report();
    const stray = await redis.strayShardSubscribers();
    console.log(
      JSON.stringify({ steps, traffic: { ...report, rooms: undefined }, counters, stray }),
    );

    // Every master moved to what was its replica.
    expect(new Set(await redis.masterPorts())).not.toEqual(new Set(masters));
    expect(unready).toEqual([]);
    expect(report.sent).toBeGreaterThan(0);
    expect(report.duplicates).toBe(0);
    // Exactly zero: nothing lost, and the receivers' own count (room-gaps.ts) agrees.
    expect(report.lostDeliveries).toBe(0);
    expect(report.lostMessages).toBe(0);
    expect(counters.gapsLost).toBe(0);
    expect(counters.failed + counters.short).toBe(0);
    // No connection holds a room's subscription that its server would not hand on.
    expect(stray).toEqual([]);
    traffic.close();
  });
});
