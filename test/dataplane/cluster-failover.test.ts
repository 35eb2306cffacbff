import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerConfigSchema } from '../../server-image/src/config.js';
import { CENSUS_EVENT, createServer, type Socketfleet } from '../../server-image/src/index.js';
import { closeAllClients } from './support/clients.js';
import { Fleet, freePort, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import {
  busCounters,
  counterDelta,
  fleetMetric,
  RoomTraffic,
  watchReadiness,
} from './support/traffic.js';

/** The slot of `socket.io#/#`, the channel of fetchSockets, serverSideEmit and serverCount. */
const SHARED_SLOT = 13868;

// A master SIGKILLed under traffic: its replica takes over, and the servers must neither go
// unready nor lose a message of any other master's rooms. The master killed is the one that also
// owns the shared channel's slot, so inter-server requests are measured through the same outage.
describe('Redis Cluster master failover under traffic', () => {
  const fleet = new Fleet('failover');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let library: Socketfleet;

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
    servers = await Promise.all([0, 1, 2].map(() => fleet.server(redis)));
    const config = ServerConfigSchema.parse({
      port: await freePort(),
      opsPort: await freePort(),
      logLevel: 'warn',
      redis: { nodes: redis.seeds() },
    });
    library = await createServer({ config, ...redis.serverLogin() });
    await until('the library server to be ready', () => library.ops.isReady());
  });

  afterAll(async () => {
    closeAllClients();
    await library?.ops.close();
    await fleet.stopAll();
  });

  it('promotes the replica; other masters lose nothing, affected rooms resume, loss equals the metric, no server goes unready', async () => {
    const victim = await redis.ownerOf(SHARED_SLOT);
    const masters = await redis.masterPorts();
    const rooms: string[] = [];
    const affected = new Set<string>();
    for (const m of masters) {
      for (let i = 0; i < 6; i++) {
        const room = await redis.roomOn(m, `m${m}-r${i}`);
        rooms.push(room);
        if (m === victim) affected.add(room);
      }
    }
    const traffic = await RoomTraffic.start(servers, rooms, { perRoomPerSecond: 10 });
    const counters = (): Promise<number[]> =>
      Promise.all(
        [
          'socketfleet_bus_publish_failed_total',
          'socketfleet_bus_publish_short_total',
          'socketfleet_bus_publish_repaired_total',
          'socketfleet_bus_duplicates_dropped_total',
        ].map((name) => fleetMetric(servers, name)),
      );
    const before = await counters();
    const readiness = watchReadiness(servers);
    await sleep(2000);

    // Inter-server requests, asked once a second through the outage.
    const census: { at: number; servers?: number; error?: string }[] = [];
    let asking = true;
    const ask = (async () => {
      while (asking) {
        const at = Date.now();
        try {
          const asked = library.io.serverSideEmitWithAck(CENSUS_EVENT);
          asked.catch(() => undefined);
          const replies = await Promise.race([
            asked,
            sleep(6000).then(() => {
              throw new Error('no answer within 6 s');
            }),
          ]);
          census.push({ at, servers: (replies as unknown[]).length });
        } catch (err) {
          census.push({ at, error: err instanceof Error ? err.message : String(err) });
        }
        await sleep(500);
      }
    })();

    const killedAt = Date.now();
    await redis.nodes.get(victim)!.kill();
    const promoted = await redis.waitPromotion(victim, SHARED_SLOT);
    const promotedAfterMs = Date.now() - killedAt;
    await sleep(5000);
    // A request asked in the moment its channels change master can go unanswered (the
    // library's 5 s timeout); requests fail fast while the slot has no master, so keep asking
    // until one is answered by every server, which the assertion below requires.
    await until(
      'an inter-server request answered by every server after the failover',
      () => census.some((c) => c.at > killedAt && c.servers === servers.length),
      20_000,
    ).catch(() => undefined); // asserted below, with the census printed
    asking = false;
    await ask;
    await traffic.stop();
    const unready = await readiness.stop();

    const others = traffic.report((r) => !affected.has(r));
    const hit = traffic.report((r) => affected.has(r));
    const [failed, short, repaired, duplicatesDropped] = (await counters()).map(
      (v, i) => v - before[i]!,
    );
    const firstOkAfter = census.find((c) => c.at > killedAt && c.servers === servers.length);
    console.log(
      JSON.stringify({
        promotedAfterMs,
        promoted,
        others: { ...others, rooms: undefined },
        affected: { ...hit, rooms: undefined },
        metrics: { failed, short, repaired, duplicatesDropped },
        census: census.map((c) => ({ t: c.at - killedAt, ...c, at: undefined })),
        requestsBackAfterMs: firstOkAfter ? firstOkAfter.at - killedAt : undefined,
      }),
    );

    expect(unready).toEqual([]);
    // Rooms on the other masters: not a message lost, duplicated or reordered.
    expect(others.sent).toBeGreaterThan(0);
    expect(others.lostDeliveries).toBe(0);
    expect(others.duplicates).toBe(0);
    expect(others.reordered).toBe(0);
    // Affected rooms: a lost delivery is counted by the publishing server, either as a failed
    // publish (missed by both other member servers) or as a short one (per server), except for
    // messages the master had already answered for but not yet written to a subscriber when it
    // died: pub/sub keeps no copy, so nobody can count those. They are at most the last 200 ms
    // of the affected rooms' traffic (6 rooms x 10/s x 0.2 s x 2 servers = 24 deliveries).
    const uncounted = hit.lostDeliveries - (2 * failed! + short!);
    console.log(JSON.stringify({ uncountedAtTheCrash: uncounted }));
    expect(uncounted).toBeGreaterThanOrEqual(0);
    expect(uncounted).toBeLessThanOrEqual(24);
    expect(hit.duplicates).toBe(0);
    // They resume once the replica is promoted, plus the time every server needs to see the new
    // master and subscribe there (slot refresh each second, subscriber reconnect backoff up to 2 s).
    expect(hit.maxGapMs).toBeLessThan(promotedAfterMs + 6000);
    // Inter-server requests answer with every server again once the slot has a master.
    expect(firstOkAfter).toBeDefined();
    traffic.close();
  });

  it('a slot range left with no master at all: its publishes are held, then counted as lost exactly; every other room carries on and no server goes unready', async () => {
    // The first test's victim is gone, so the promoted replica has no replica of its own.
    const lonely = await redis.ownerOf(SHARED_SLOT);
    const rooms: string[] = [];
    const doomed = new Set<string>();
    for (const m of await redis.masterPorts()) {
      for (let i = 0; i < 4; i++) {
        const room = await redis.roomOn(m, `gone${m}-r${i}`);
        rooms.push(room);
        if (m === lonely) doomed.add(room);
      }
    }
    const traffic = await RoomTraffic.start(servers, rooms, { perRoomPerSecond: 10 });
    const before = await busCounters(servers);
    const readiness = watchReadiness(servers);
    await sleep(1500);
    const killedAt = Date.now();
    await redis.nodes.get(lonely)!.kill();
    // Longer than the 12 s hold, so every publish of the dead range has failed by the end.
    await sleep(15_000);
    await traffic.stop(1500, 15_000);
    // The last publishes of the dead range are given up one hold (12 s + 1 s) after they were sent.
    await sleep(13_500);
    const unready = await readiness.stop();
    const counters = counterDelta(await busCounters(servers), before);
    const others = traffic.report((r) => !doomed.has(r));
    const hit = traffic.report((r) => doomed.has(r));
    console.log(
      JSON.stringify({
        killedForMs: Date.now() - killedAt,
        others: { ...others, rooms: undefined, missing: undefined },
        doomed: { ...hit, rooms: undefined, missing: hit.missing.slice(0, 3) },
        counters,
      }),
    );
    expect(unready).toEqual([]);
    expect(others.sent).toBeGreaterThan(0);
    expect(others.lostDeliveries).toBe(0);
    expect(others.duplicates).toBe(0);
    expect(hit.lostMessages).toBeGreaterThan(0);
    // Each lost message is one failed publish, missed by both other member servers.
    expect(counters.failed).toBe(hit.lostMessages);
    expect(hit.lostDeliveries).toBe(2 * counters.failed + counters.short);
    traffic.close();
  });
});
