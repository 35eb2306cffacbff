import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerConfigSchema } from '../../server-image/src/config.js';
import {
  CENSUS_EVENT,
  createServer,
  relayHandlers,
  type ServerHandle,
} from '../../server-image/src/index.js';
import { closeAllClients } from './support/clients.js';
import { Fleet, freePort, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import { fleetMetric, RoomTraffic, watchReadiness } from './support/traffic.js';

/** The slot of `socket.io#/#`, the channel of fetchSockets, serverSideEmit and serverCount. */
const SHARED_SLOT = 13868;

// A master SIGKILLed under traffic: its replica takes over, and the servers must neither go
// unready nor lose a message of any other master's rooms. The master killed is the one that also
// owns the shared channel's slot, so inter-server requests are measured through the same outage.
describe('Redis Cluster master failover under traffic', () => {
  const fleet = new Fleet('failover');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let library: ServerHandle;

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
    servers = await Promise.all([0, 1, 2].map(() => fleet.server(redis)));
    const config = ServerConfigSchema.parse({
      port: await freePort(),
      opsPort: await freePort(),
      logLevel: 'warn',
      redis: { nodes: redis.seeds() },
    });
    library = await createServer(config, relayHandlers, { redisPassword: redis.password });
    await until('the library server to be ready', () => library.isReady());
  });

  afterAll(async () => {
    closeAllClients();
    await library?.close();
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
          const replies = await Promise.race([
            library.io.serverSideEmitWithAck(CENSUS_EVENT),
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
    // Affected rooms: every lost delivery is counted by the publishing server, either as a
    // failed publish (missed by both other member servers) or as a short one (per server).
    expect(hit.lostDeliveries).toBe(2 * failed! + short!);
    expect(hit.duplicates).toBe(0);
    // They resume once the replica is promoted, plus the time every server needs to see the new
    // master and subscribe there (slot refresh each second, subscriber reconnect backoff up to 2 s).
    expect(hit.maxGapMs).toBeLessThan(promotedAfterMs + 6000);
    // Inter-server requests answer with every server again once the slot has a master.
    expect(firstOkAfter).toBeDefined();
    traffic.close();
  });
});
