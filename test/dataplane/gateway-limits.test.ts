// spec.gateway.limits on the real data path: Debian's nginx running the rendered conf in front of
// real servers (entrypoint.sh) on a real Redis Cluster, with real socket.io-clients bound to
// distinct loopback source addresses. One address floods; another, at the same time, connects
// and delivers as if nothing happened. Counts are exact: a rate of 3 handshakes a minute cannot
// refill a bucket while the test runs. Also the loopback stub_status the exporter reads. About 20 s.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import { closeAllClients, collect, connect, type Client } from './support/clients.js';
import {
  Fleet,
  freePort,
  sleep,
  until,
  type NginxProcess,
  type ServerProcess,
} from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

function cluster(limits: Record<string, number>): RealtimeCluster {
  const parsed = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'limits' },
    spec: { replicas: 2, redis: { shards: 1 }, gateway: { limits } },
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.cluster;
}

/** The HTTP status behind a refused connect, for either transport. */
function refusedStatus(err: unknown): number | undefined {
  const d = (err as { description?: unknown }).description;
  if (typeof d === 'number') return d;
  const text = d instanceof Error ? d.message : String((d as { message?: unknown })?.message ?? d);
  const m = /\b(\d{3})\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}

interface Outcome {
  connected: Client[];
  refused: (number | undefined)[];
}

async function attempt(
  url: string,
  count: number,
  localAddress: string,
  transports: ('polling' | 'websocket')[],
): Promise<Outcome> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, () => connect(url, { transports, localAddress })),
  );
  const out: Outcome = { connected: [], refused: [] };
  for (const r of results) {
    if (r.status === 'fulfilled') out.connected.push(r.value);
    else out.refused.push(refusedStatus(r.reason));
  }
  return out;
}

function rawGet(
  port: number,
  localAddress: string,
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, localAddress, path: '/socket.io/?EIO=4&transport=polling' },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }),
        );
      },
    );
    req.on('error', reject);
  });
}

async function joinAll(clients: Client[], room: string): Promise<void> {
  for (const c of clients) expect(await c.emitWithAck('join', room)).toMatchObject({ ok: true });
}

describe('per-address abuse limits at the gateway', () => {
  const fleet = new Fleet('gateway-limits');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  /** Handshakes: 3 a minute with a burst of 9, i.e. exactly 10 at once per address. */
  let handshakes: NginxProcess;
  /** Concurrent requests: 5 per address, handshakes unlimited. */
  let connections: NginxProcess;
  /** nginx A's stub_status listener, as the gateway exporter sidecar reads it. */
  let statusPort: number;

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 1 });
    servers = await Promise.all([fleet.server(redis), fleet.server(redis)]);
    const endpoints = servers.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    const a = cluster({
      handshakesPerSecondPerAddress: 0.05,
      handshakeBurst: 9,
      connectionsPerAddress: 100,
      clientHeaderTimeoutSeconds: 2,
      clientBodyTimeoutSeconds: 2,
    });
    statusPort = await freePort();
    handshakes = await fleet.nginx((_p, runtime) =>
      renderNginxConf(a, endpoints, { ...runtime, statusPort }),
    );
    const b = cluster({ connectionsPerAddress: 5, handshakesPerSecondPerAddress: 0 });
    connections = await fleet.nginx((_p, runtime) => renderNginxConf(b, endpoints, runtime));
  }, 60_000);

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('refuses a handshake flood from one address with 429 while another address connects and delivers', async () => {
    // Another address's clients, already connected before the flood: two upgrade from polling,
    // two stay on long-polling, so both transports have to survive what follows.
    const calm = [
      ...(await Promise.all(
        [0, 1].map(() =>
          connect(handshakes.url, {
            transports: ['polling', 'websocket'],
            localAddress: '127.0.0.3',
          }),
        ),
      )),
      ...(await Promise.all(
        [0, 1].map(() =>
          connect(handshakes.url, { transports: ['polling'], localAddress: '127.0.0.3' }),
        ),
      )),
    ];
    await until('the upgrading clients to reach websocket', () =>
      calm.slice(0, 2).every((c) => c.io.engine.transport.name === 'websocket'),
    );

    const flood = await attempt(handshakes.url, 30, '127.0.0.2', ['websocket']);
    expect(flood.connected.length).toBe(10);
    expect(flood.refused).toEqual(Array.from({ length: 20 }, () => 429));
    // The bucket stays empty: one more handshake is refused, with a Retry-After to honour.
    expect(await rawGet(handshakes.port, '127.0.0.2')).toEqual({ status: 429, retryAfter: '20' });

    // Longer than the header and body timeouts (2 s): idle WebSockets and waiting polls stay.
    await sleep(4500);
    // One more new client from the calm address: its bucket was not touched by the flood.
    calm.push(
      await connect(handshakes.url, { transports: ['polling'], localAddress: '127.0.0.3' }),
    );
    const members = [...calm, ...flood.connected];
    await joinAll(members, 'limits');
    const inboxes = members.map((c) => collect(c));
    // Every publish from a polling client is requests with a sid (a POST and the polls that
    // carry the ack): 12 of them are more than the bucket's 10, and none may be refused.
    const polling = calm[2]!;
    for (let i = 0; i < 12; i++) {
      expect(await polling.emitWithAck('publish', { room: 'limits', data: `m${i}` })).toEqual({
        ok: true,
      });
    }
    await until('every member to receive all 12', () => inboxes.every((m) => m.length === 12));
    await sleep(300);
    expect(inboxes.map((m) => m.length)).toEqual(members.map(() => 12));
    expect(members.every((c) => c.connected)).toBe(true);
    expect(calm[0]!.io.engine.transport.name).toBe('websocket');
    expect(polling.io.engine.transport.name).toBe('polling');
  });

  it('caps concurrent connections per address and frees a slot when one closes', async () => {
    const first = await attempt(connections.url, 12, '127.0.0.4', ['websocket']);
    expect(first.connected.length).toBe(5);
    expect(first.refused).toEqual(Array.from({ length: 7 }, () => 429));
    // Another address fills its own cap with long-polling clients: each holds one waiting GET,
    // and the POSTs that carry its sends are not counted, so sessions at the cap keep working.
    const other = await attempt(connections.url, 5, '127.0.0.5', ['polling']);
    expect(other.connected.length).toBe(5);
    expect((await attempt(connections.url, 1, '127.0.0.5', ['polling'])).refused).toEqual([429]);

    for (const c of first.connected.slice(0, 2)) c.close();
    const again = await until('the two closed connections to leave the zone', async () => {
      const probe = await attempt(connections.url, 1, '127.0.0.4', ['websocket']);
      return probe.connected.length === 1 ? probe : undefined;
    });
    const rest = await attempt(connections.url, 3, '127.0.0.4', ['websocket']);
    expect(again.connected.length + rest.connected.length).toBe(2);
    expect(rest.refused).toEqual([429, 429]);

    const members = [
      ...first.connected.slice(2),
      ...again.connected,
      ...rest.connected,
      ...other.connected,
    ];
    expect(members.length).toBe(10);
    await joinAll(members, 'capped');
    const inboxes = members.map((c) => collect(c));
    for (const [i, c] of other.connected.entries()) {
      expect(await c.emitWithAck('publish', { room: 'capped', data: `p${i}` })).toEqual({
        ok: true,
      });
    }
    await until('every member to receive all 5', () => inboxes.every((m) => m.length === 5));
    await sleep(300);
    expect(inboxes.map((m) => m.length)).toEqual(members.map(() => 5));
    expect(members.every((c) => c.connected)).toBe(true);
  });

  it('closes a client that sends its request header too slowly', async () => {
    const socket = net.connect({
      host: '127.0.0.1',
      port: handshakes.port,
      localAddress: '127.0.0.6',
    });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const started = Date.now();
    socket.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: gw\r\n');
    const closedAfter = await new Promise<number>((resolve) => {
      socket.on('data', () => undefined);
      socket.once('close', () => resolve(Date.now() - started));
    });
    // clientHeaderTimeoutSeconds is 2 here; nginx's own default would hold it for 60 s.
    expect(closedAfter).toBeGreaterThanOrEqual(1500);
    expect(closedAfter).toBeLessThan(15_000);
  }, 30_000);

  it('serves stub_status for the exporter on 127.0.0.1 only, counting the open connections', async () => {
    const held = await connect(handshakes.url, {
      transports: ['websocket'],
      localAddress: '127.0.0.7',
    });
    const text = await (await fetch(`http://127.0.0.1:${statusPort}/stub_status`)).text();
    const m =
      /^Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$/.exec(
        text,
      );
    expect(m).not.toBeNull();
    // The held WebSocket and this request at least.
    expect(Number(m![1])).toBeGreaterThanOrEqual(2);
    held.close();
    // Bound to 127.0.0.1: the same port on another address of the pod is closed.
    await expect(fetch(`http://127.0.0.2:${statusPort}/stub_status`)).rejects.toThrow();
    expect((await fetch(`http://127.0.0.1:${statusPort}/`)).status).toBe(404);
  });
});
