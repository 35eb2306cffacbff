import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerConfigSchema, type ServerConfigInput } from '../../server-image/src/config.js';
import { createServer, relayApp, type Socketfleet } from '../../server-image/src/index.js';
import { Fleet, freePort, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import {
  Publisher,
  settle,
  trackedClient,
  verify,
  type Tracked,
} from './support/recovery-traffic.js';

/**
 * A TCP relay the test can freeze: existing connections stop carrying bytes but stay open (what
 * a phone that changed networks leaves behind), and new ones go to another server.
 */
class Relay {
  private readonly pairs: net.Socket[][] = [];
  private readonly frozen: net.Socket[] = [];
  private readonly server: net.Server;

  constructor(public target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop);
      upstream.on('error', drop);
      this.pairs.push([client, upstream]);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () =>
        resolve((this.server.address() as net.AddressInfo).port),
      ),
    );
  }

  freeze(): void {
    for (const [client, upstream] of this.pairs.splice(0)) {
      client!.unpipe(upstream);
      upstream!.unpipe(client);
      client!.pause();
      upstream!.pause();
      this.frozen.push(upstream!);
      // The client side is let go (so the client can reconnect); the server never hears of it.
      client!.destroy();
    }
  }

  close(): void {
    for (const [a, b] of this.pairs) {
      a!.destroy();
      b!.destroy();
    }
    for (const s of this.frozen) s.destroy();
    this.server.close();
  }
}

// A client whose network changed reconnects to another server before its old server notices
// (that takes the old server's ping timeout). The old server's late save must not overwrite the
// session the new server restored and took over; otherwise the next reconnect would replay from
// stale positions (duplicates) or restore stale rooms.
describe('connection state recovery: reconnecting before the old server notices', () => {
  const fleet = new Fleet('recovery-blip');
  let redis: RedisClusterFixture;
  let x: ServerProcess;
  let y: ServerProcess;
  let library: Socketfleet;
  let relay: Relay;
  let relayPort: number;
  const overrides: Partial<ServerConfigInput> = {
    logLevel: 'warn',
    // Long between pings (the new server's heartbeat saves would repair a stale session within
    // one), short to time out (the old server notices soon).
    pingIntervalMs: 5000,
    pingTimeoutMs: 1000,
    connectionStateRecovery: { enabled: true, maxDisconnectionSeconds: 30 },
  };

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 0 });
    [x, y] = await Promise.all([fleet.server(redis, overrides), fleet.server(redis, overrides)]);
    library = await createServer({
      config: ServerConfigSchema.parse({
        ...overrides,
        port: await freePort(),
        opsPort: await freePort(),
        redis: { nodes: redis.seeds() },
      }),
      ...redis.serverLogin(),
    });
    relayApp(library.io, library.ops);
    await until('the publishing server to be ready', () => library.ops.isReady());
    relay = new Relay(x!.port);
    relayPort = await relay.listen();
  }, 60_000);

  afterAll(async () => {
    relay?.close();
    await library?.ops.close();
    await fleet.stopAll();
  });

  it('the old server times the client out after the new one restored it: the next reconnect is still exact', async () => {
    const rooms = ['blip-a', 'blip-b', 'blip-c'];
    const publisher = new Publisher(library, rooms);
    const clients: Tracked[] = [];
    for (let i = 0; i < 3; i++)
      clients.push(
        await trackedClient(
          `http://127.0.0.1:${relayPort}`,
          900 + i,
          [rooms[i]!, rooms[(i + 1) % 3]!],
          'msgpack',
        ),
      );
    publisher.start(50);
    await sleep(1500);
    // The network changes: x keeps its connections (and saves on its ping timeout, up to 6 s later).
    relay.target = y.port;
    relay.freeze();
    await until('every client to be back (on y)', () =>
      clients.every((c) => c.reconnects.length === 1 && c.socket.connected),
    );
    await until(
      'x to time the clients out',
      async () => (await x.metric('socketfleet_connected_clients')) === 0,
      15_000,
    );
    // A second blip, now on y: it must restore from y's session, not x's late one.
    relay.freeze();
    await until('every client to be back again', () =>
      clients.every((c) => c.reconnects.length === 2 && c.socket.connected),
    );
    await sleep(1500);
    publisher.stop();
    await settle(clients, publisher);
    const v = verify(clients, publisher);
    console.log(`recovery blip: ${JSON.stringify(v)}`);
    for (const c of clients) c.socket.close();
    expect(v.recovered).toBe(6);
    expect(v.notRecovered).toBe(0);
    expect(v.lost).toBe(0);
    expect(v.duplicates).toBe(0);
    expect(v.reordered).toBe(0);
  }, 90_000);
});
