import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { EndpointSliceLike } from '../../operator/desired/upstreams.js';
import type { GatewaySync } from '../../operator/gateway/sync.js';
import { ServerConfigSchema, type ServerConfigInput } from '../../server-image/src/config.js';
import { createServer, relayApp, type Socketfleet } from '../../server-image/src/index.js';
import { Fleet, freePort, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import { slicesOf, startSyncedGateway, type GatewayMember } from './support/synced-gateway.js';
import {
  logOrders,
  Publisher,
  settle,
  trackedClient,
  verify,
  type Tracked,
  type Verdict,
} from './support/recovery-traffic.js';

const WINDOW_SECONDS = 30;
const CLIENTS = 36;
const ROOMS = 12;
const PUBLISH_EVERY_MS = 50;

const parsed = parseRealtimeCluster({
  apiVersion: 'socketfleet.dev/v1alpha1',
  kind: 'RealtimeCluster',
  metadata: { name: 'recovery' },
  spec: { replicas: 3 },
});
if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
const cluster = parsed.cluster;

type Member = GatewayMember;

function log(line: string): void {
  process.stdout.write(`recovery: ${line}\n`);
}

/**
 * Connection-state recovery end to end, per parser: a real Redis Cluster, three servers with
 * recovery on behind the real gateway (nginx on the operator's conf, its sync sidecar's code),
 * real socket.io-clients that each join two rooms on different shards, and a publisher that
 * numbers every room's broadcasts (each with a binary attachment). Every check counts, per
 * client and room, each number from its first to the last published: lost, duplicated, out of order.
 */
describe.each(['msgpack', 'json'] as const)('connection state recovery (%s parser)', (parser) => {
  const fleet = new Fleet(`recovery-${parser}`);
  let redis: RedisClusterFixture;
  let nginx: ServerProcess | { url: string };
  let sync: GatewaySync;
  let library: Socketfleet;
  let publisher: Publisher;
  const members: Member[] = [];
  let clients: Tracked[] = [];
  let rooms: string[] = [];
  const overrides: Partial<ServerConfigInput> = {
    parser,
    logLevel: 'warn',
    drainSeconds: 2,
    pingIntervalMs: 2000,
    pingTimeoutMs: 3000,
    connectionStateRecovery: { enabled: true, maxDisconnectionSeconds: WINDOW_SECONDS },
  };

  const slices = (): EndpointSliceLike[] => slicesOf(members);

  async function addServer(): Promise<Member> {
    const member = { server: await fleet.server(redis, overrides), ready: true };
    members.push(member);
    await sync.syncNow();
    return member;
  }

  /** What deleting a pod does: unready, preStop waits for the gateway, SIGTERM, drain. */
  async function retire(member: Member): Promise<void> {
    member.ready = false;
    await sync.syncNow();
    await fetch(`http://127.0.0.1:${member.server.opsPort}/prestop?quietMs=500&maxMs=3000`);
    member.server.child.kill('SIGTERM');
    expect(await member.server.exited).toEqual({ code: 0, signal: null });
    members.splice(members.indexOf(member), 1);
    await sync.syncNow();
  }

  /** Rooms whose slot sits at the start of a master's range: a rebalance onto a new master moves those. */
  async function pickRooms(): Promise<string[]> {
    const owners = await redis.slotOwners();
    const starts: number[] = [];
    for (let s = 0; s < owners.length; s++)
      if (s === 0 || owners[s] !== owners[s - 1]) starts.push(s);
    const picked: string[] = [];
    for (let i = 0; picked.length < ROOMS; i++) {
      const room = `rec-${parser}-${i}`;
      const slot = calculateSlot(`socket.io#/#${room}#`);
      if (starts.some((s) => slot >= s && slot < s + 600)) picked.push(room);
    }
    return picked;
  }

  async function restartTraffic(): Promise<void> {
    publisher.start(PUBLISH_EVERY_MS);
    await sleep(1500);
  }

  /** Every client recovered, and every message arrived once, in the room log's order, intact. */
  function expectExact(v: Verdict): void {
    expect(v.notRecovered).toBe(0);
    expect(v.lost).toBe(0);
    expect(v.duplicates).toBe(0);
    expect(v.reordered).toBe(0);
    expect(v.outOfLogOrder).toBe(0);
    expect(v.binaryBad).toBe(0);
  }

  async function finish(name: string): Promise<Verdict> {
    publisher.stop();
    await settle(clients, publisher);
    const v = verify(clients, publisher, await logOrders(redis, rooms));
    log(`${parser} ${name}: ${JSON.stringify(v)}`);
    return v;
  }

  /** Fresh clients for the next check: each joins two rooms, on different shards. */
  async function freshClients(): Promise<void> {
    for (const c of clients) c.socket.close();
    clients = [];
    const base = parser === 'msgpack' ? 0 : 500;
    for (let i = 0; i < CLIENTS; i++) {
      const two = [rooms[i % ROOMS]!, rooms[(i + 5) % ROOMS]!];
      clients.push(await trackedClient(nginx.url, base + i, two, parser));
    }
  }

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 0 });
    for (let i = 0; i < 3; i++)
      members.push({ server: await fleet.server(redis, overrides), ready: true });
    ({ nginx, sync } = await startSyncedGateway(fleet, cluster, slices));
    const config = ServerConfigSchema.parse({
      ...overrides,
      port: await freePort(),
      opsPort: await freePort(),
      redis: { nodes: redis.seeds() },
    });
    library = await createServer({ config, ...redis.serverLogin() });
    relayApp(library.io, library.ops);
    await until('the publishing server to be ready', () => library.ops.isReady());
    rooms = await pickRooms();
    publisher = new Publisher(library, rooms);
    await freshClients();
  }, 120_000);

  afterAll(async () => {
    publisher?.stop();
    for (const c of clients) c.socket.close();
    sync?.stop();
    await library?.ops.close();
    await fleet.stopAll();
  }, 60_000);

  // Every restored packet goes through the parser in the SIGKILL case below; the restart path is
  // the same code for both parsers: run it once.
  it.skipIf(parser === 'json')(
    'a rolling restart of every server under traffic: every client recovers, zero loss',
    async () => {
      await restartTraffic();
      const before = [...members];
      for (const old of before) {
        await addServer();
        await retire(old);
        await sleep(500);
      }
      await sleep(1000);
      const v = await finish('rolling restart');
      expect(v.expected).toBeGreaterThan(CLIENTS * 2 * 20);
      expect(v.recovered).toBeGreaterThanOrEqual(CLIENTS);
      expectExact(v);
    },
    120_000,
  );

  it('SIGKILL of a server under traffic: its clients reconnect elsewhere and get what they missed', async () => {
    await freshClients();
    await restartTraffic();
    const victim = members[0]!;
    const onVictim = await victim.server.metric('socketfleet_connected_clients');
    victim.server.child.kill('SIGKILL');
    await victim.server.exited;
    members.splice(0, 1);
    await sync.syncNow();
    await sleep(3000);
    await addServer();
    await sleep(1000);
    const v = await finish('SIGKILL');
    log(`${parser} SIGKILL: ${onVictim} clients were on the killed server`);
    expect(onVictim).toBeGreaterThan(0);
    expect(v.recovered).toBe(onVictim);
    expectExact(v);
  }, 120_000);

  // The parser plays no part in a reshard: run it once.
  it.skipIf(parser === 'json')(
    'a reshard while clients are away still recovers them; past the window they get a fresh session',
    async () => {
      await freshClients();
      await restartTraffic();
      // Half the clients go away (their transport drops; the server keeps their sessions).
      const awayAt = Date.now();
      const away = clients.slice(0, CLIENTS / 2);
      const late = away.slice(0, 3);
      const soon = away.slice(3);
      for (const c of away) {
        c.socket.io.reconnection(false);
        c.socket.io.engine.close();
      }
      await until('the away clients to be disconnected', () =>
        away.every((c) => !c.socket.connected),
      );
      const ownersBefore = await redis.slotOwners();
      const reshardStarted = Date.now();
      const added = await redis.addMaster();
      await redis.rebalance();
      const reshardMs = Date.now() - reshardStarted;
      const ownersAfter = await redis.slotOwners();
      const movedRooms = rooms.filter((r) => {
        const s = calculateSlot(`socket.io#/#${r}#`);
        return ownersBefore[s] !== ownersAfter[s];
      });
      log(`${parser} reshard: ${movedRooms.length}/${rooms.length} rooms moved to ${added.port}`);
      // Away through the whole reshard, back within the window.
      expect(away.every((c) => !c.socket.connected)).toBe(true);
      for (const c of soon) {
        c.socket.io.reconnection(true);
        c.socket.connect();
      }
      await sleep(1500);
      publisher.stop();
      await settle(
        clients.filter((c) => !late.includes(c)),
        publisher,
      );
      const v = verify(
        clients.filter((c) => !late.includes(c)),
        publisher,
        await logOrders(redis, rooms),
      );
      const results: Record<string, number> = {};
      for (const m of members)
        for (const r of ['recovered', 'expired', 'unknown-offset', 'gap', 'too-long', 'error'])
          results[r] =
            (results[r] ?? 0) +
            (await m.server.metric('socketfleet_recovery_restores_total', { result: r }));
      log(
        `${parser} reshard: away ${reshardMs} ms of reshard, restores ${JSON.stringify(results)}, ${JSON.stringify(v)}`,
      );
      expect(movedRooms.length).toBeGreaterThan(0);
      expect(v.recovered).toBe(soon.length);
      expect(v.notRecovered).toBe(0);
      expect(v.lost).toBe(0);
      expect(v.duplicates).toBe(0);
      // While slots move, the publisher's retried publishes can land in its room's log out of
      // their numbering (as they would reach pub/sub without recovery); every server delivers in
      // log order, so clients do too.
      expect(v.outOfLogOrder).toBe(0);

      // Past the window: a fresh session, and told so.
      await sleep(Math.max(0, awayAt + (WINDOW_SECONDS + 1) * 1000 - Date.now()));
      for (const c of late) c.socket.connect();
      await until('the late clients to reconnect', () => late.every((c) => c.socket.connected));
      expect(late.map((c) => c.socket.recovered)).toEqual([false, false, false]);
    },
    120_000,
  );
});
