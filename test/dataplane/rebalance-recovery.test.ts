// Rebalancing with connection state recovery on: the clients a rebalance sheds lose nothing.
// A real Redis Cluster, two servers with recovery on behind the real gateway (nginx on the
// operator's conf, consistent hash on the client address, the sync sidecar's code), real
// socket.io-clients from distinct loopback addresses, each in two rooms on different shards, and
// a publisher numbering every room's broadcasts. A third server joins, then every server gets the
// /rebalance request the operator sends; counted exactly: each shed client reconnects once, to
// the server the ring names, recovered, with every number of both rooms; nobody else moves; no
// client sees an error. About 15 s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { EndpointSliceLike } from '../../operator/desired/upstreams.js';
import type { GatewaySync } from '../../operator/gateway/sync.js';
import { ServerConfigSchema, type ServerConfigInput } from '../../server-image/src/config.js';
import { createServer, relayApp, type Socketfleet } from '../../server-image/src/index.js';
import { KetamaRing } from '../../server-image/src/ketama.js';
import { Fleet, freePort, sleep, until, type NginxProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import {
  logOrders,
  Publisher,
  settle,
  trackedClient,
  verify,
  type Tracked,
} from './support/recovery-traffic.js';
import { slicesOf, startSyncedGateway, type GatewayMember } from './support/synced-gateway.js';

const CLIENTS = 60;
const ROOMS = 10;
const PUBLISH_EVERY_MS = 50;
const SPREAD_MS = 2000;
/** trackedClient's numbering: client n connects from 127.(60 + n / 250).(n % 250).1. */
const FIRST_CLIENT = 1000;

const parsed = parseRealtimeCluster({
  apiVersion: 'socketfleet.dev/v1alpha1',
  kind: 'RealtimeCluster',
  metadata: { name: 'rebalance-recovery' },
  spec: { replicas: 2 },
});
if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
const cluster = parsed.cluster;

function log(line: string): void {
  process.stdout.write(`rebalance-recovery: ${line}\n`);
}

const addressOf = (n: number): string => `127.${60 + Math.floor(n / 250)}.${n % 250}.1`;

describe('rebalancing with connection state recovery on', () => {
  const fleet = new Fleet('rebalance-recovery');
  let redis: RedisClusterFixture;
  let nginx: NginxProcess;
  let sync: GatewaySync;
  let library: Socketfleet;
  let publisher: Publisher;
  const members: GatewayMember[] = [];
  const clients: Tracked[] = [];
  /** Per client: connect_error events and disconnect reasons, as its user would see them. */
  const connectErrors: number[] = [];
  const disconnects: string[][] = [];
  const overrides: Partial<ServerConfigInput> = {
    logLevel: 'warn',
    drainSeconds: 2,
    connectionStateRecovery: { enabled: true, maxDisconnectionSeconds: 30 },
  };
  const slices = (): EndpointSliceLike[] => slicesOf(members);
  const started = Date.now();

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 0 });
    for (let i = 0; i < 2; i++)
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
    const rooms = Array.from({ length: ROOMS }, (_, i) => `rebalance-${i}`);
    publisher = new Publisher(library, rooms);
    for (let i = 0; i < CLIENTS; i++) {
      const t = await trackedClient(
        nginx.url,
        FIRST_CLIENT + i,
        [rooms[i % ROOMS]!, rooms[(i + 3) % ROOMS]!],
        'msgpack',
      );
      connectErrors.push(0);
      disconnects.push([]);
      t.socket.on('connect_error', () => connectErrors[i]!++);
      t.socket.on('disconnect', (reason) => disconnects[i]!.push(reason));
      clients.push(t);
    }
  }, 60_000);

  afterAll(async () => {
    publisher?.stop();
    for (const c of clients) c.socket.close();
    sync?.stop();
    await library?.ops.close();
    await fleet.stopAll();
    log(`whole file: ${Date.now() - started} ms`);
  }, 60_000);

  it('sheds exactly the clients whose hash moved, once each, and they lose nothing', async () => {
    publisher.start(PUBLISH_EVERY_MS);
    await sleep(1000);

    // A server joins: the gateway hashes new clients onto it; the connected ones stay put.
    members.push({ server: await fleet.server(redis, overrides), ready: true });
    await sync.syncNow();
    const servers = members.map((m) => `127.0.0.1:${m.server.port}`);
    const ring = new KetamaRing(servers.map((server) => ({ server })));
    const home = clients.map((_, i) => ring.owner(addressOf(FIRST_CLIENT + i)));
    const counts = (): Promise<number[]> =>
      Promise.all(members.map((m) => m.server.metric('socketfleet_connected_clients')));
    const before = await counts();
    const ideal = servers.map((s) => home.filter((h) => h === s).length);
    const reconnectsBefore = clients.map((c) => c.reconnects.length);

    // What the operator's autopilot sends once the server set has settled.
    const answers = await Promise.all(
      members.map(async (m, i) => {
        const res = await fetch(`http://127.0.0.1:${m.server.opsPort}/rebalance`, {
          method: 'POST',
          body: JSON.stringify({ self: servers[i], servers, max: 1000, spreadMs: SPREAD_MS }),
        });
        return (await res.json()) as { misplaced: number; shedding: number };
      }),
    );
    const misplaced = answers.reduce((a, r) => a + r.misplaced, 0);
    const t0 = Date.now();
    const after = await until(
      'every server at its ring share',
      async () => {
        const c = await counts();
        return c.every((n, i) => n === ideal[i]) ? c : undefined;
      },
      20_000,
    );
    const settledMs = Date.now() - t0;
    const moved = (): number[] =>
      clients.map((c, i) => i).filter((i) => clients[i]!.reconnects.length > reconnectsBefore[i]!);
    await until(
      `${misplaced} clients reconnected`,
      () => moved().length >= misplaced,
      10_000,
    ).catch(() => undefined);
    // Traffic goes on a little after the last move, then every room's last number must arrive.
    await sleep(1000);
    publisher.stop();
    await settle(clients, publisher);

    const shed = moved();
    const v = verify(clients, publisher, await logOrders(redis, publisher.rooms));
    const shedVerdict = verify(
      shed.map((i) => clients[i]!),
      publisher,
    );
    const twice = shed.filter((i) => clients[i]!.reconnects.length - reconnectsBefore[i]! > 1);
    const errors = connectErrors.reduce((a, b) => a + b, 0);
    const reasons = [...new Set(disconnects.flat())];
    // Where each shed client is now: its home on the ring (the servers' counts say where all are).
    log(
      `before ${JSON.stringify(before)}, misplaced ${misplaced}, after ${JSON.stringify(after)} ` +
        `(ring ${JSON.stringify(ideal)}) ${settledMs} ms after the request (spread ${SPREAD_MS} ms); ` +
        `shed ${shed.length} (twice ${twice.length}), connect errors ${errors}, disconnect reasons ${JSON.stringify(reasons)}; ` +
        `shed clients: expected ${shedVerdict.expected}, lost ${shedVerdict.lost}, recovered ${shedVerdict.recovered}; ` +
        `all: ${JSON.stringify(v)}`,
    );

    expect(before[2]).toBe(0);
    expect(misplaced).toBeGreaterThan(0);
    expect(after).toEqual(ideal);
    // Exactly the misplaced clients moved, each once; with every server at its ring share, each
    // landed where the ring names.
    expect(shed.length).toBe(misplaced);
    expect(twice).toEqual([]);
    // Every shed client's session came back: nothing lost, nothing twice, in log order.
    expect(shedVerdict.recovered).toBe(misplaced);
    expect(shedVerdict.notRecovered).toBe(0);
    expect(shedVerdict.lost).toBe(0);
    expect(shedVerdict.expected).toBeGreaterThan(misplaced * 2 * 40);
    expect(v.lost).toBe(0);
    expect(v.duplicates).toBe(0);
    expect(v.reordered).toBe(0);
    expect(v.outOfLogOrder).toBe(0);
    expect(v.binaryBad).toBe(0);
    // What a user would see: no connect error; a shed client only a transport close.
    expect(errors).toBe(0);
    expect(reasons).toEqual(['transport close']);
  }, 60_000);
});
