import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { closeAllClients, collect, connect, type Client } from './support/clients.js';
import {
  ENTRYPOINT,
  Fleet,
  ensureServerBuilt,
  sleep,
  until,
  type ServerProcess,
} from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

const MAX_PAYLOAD = 4096;
const EVENTS_PER_SECOND = 20;

/** Opens a raw Engine.IO WebSocket, waits for the open packet, sends `frame`, resolves with the close code. */
function rawSession(server: ServerProcess, frame: string | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(
        new Error(`server kept the connection open after ${JSON.stringify(frame.toString())}`),
      );
    }, 10_000);
    ws.once('message', () => ws.send(frame));
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    ws.once('error', () => undefined);
  });
}

describe('bad input', () => {
  const fleet = new Fleet('bad-input');
  let redis: RedisClusterFixture;
  let server: ServerProcess;
  let jsonServer: ServerProcess;
  let bystander: Client;
  let bystanderInbox: unknown[];

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    [server, jsonServer] = await Promise.all([
      fleet.server(redis, {
        maxPayloadBytes: MAX_PAYLOAD,
        eventsPerSecond: EVENTS_PER_SECOND,
        roomsPerConnection: 3,
      }),
      fleet.server(redis, {
        parser: 'json',
        corsOrigins: ['https://app.example'],
        pingIntervalMs: 7000,
        pingTimeoutMs: 3000,
        maxPayloadBytes: 50_000,
      }),
    ]);
    bystander = await connect(server.url);
    bystanderInbox = collect(bystander);
    await bystander.emitWithAck('join', 'calm');
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  /** The bystander on the same server still publishes and receives. */
  async function bystanderUnaffected(tag: string): Promise<void> {
    expect(bystander.connected).toBe(true);
    expect(await bystander.emitWithAck('publish', { room: 'calm', data: tag })).toEqual({
      ok: true,
    });
    await until(`bystander to receive ${tag}`, () =>
      bystanderInbox.some((m) => (m as { data: unknown }).data === tag),
    );
    expect(await server.readyz()).toBe(200);
  }

  it('refuses unknown events and invalid payloads with one sentence each', async () => {
    const c = await connect(server.url);
    expect(await c.emitWithAck('subscribe', 'x')).toEqual({
      ok: false,
      error: 'unknown event "subscribe"; this server accepts: join, leave, publish.',
    });
    expect(await c.emitWithAck('join', 42)).toEqual({
      ok: false,
      error: 'invalid "join" payload: Invalid input: expected string, received number',
    });
    expect(await c.emitWithAck('publish', { data: 1 })).toEqual({
      ok: false,
      error: 'invalid "publish" payload: room: Invalid input: expected string, received undefined',
    });
    expect(await c.emitWithAck('publish', { room: 'calm', data: 1, extra: true })).toMatchObject({
      ok: false,
    });
    expect(await c.emitWithAck('join', '')).toMatchObject({ ok: false });
    // Without an ack callback a bad event is simply dropped; the connection stays.
    c.emit('join', { not: 'a room' });
    c.emit('nonsense');
    expect(await c.emitWithAck('join', 'fine')).toMatchObject({ ok: true });
    expect(
      await server.metric('socketfleet_rejected_events_total', { reason: 'unknown-event' }),
    ).toBeGreaterThanOrEqual(2);
    await bystanderUnaffected('after-invalid');
  });

  it('refuses joining more rooms than roomsPerConnection', async () => {
    const c = await connect(server.url);
    for (let i = 0; i < 3; i++)
      expect(await c.emitWithAck('join', `cap-${i}`)).toMatchObject({ ok: true });
    expect(await c.emitWithAck('join', 'cap-3')).toEqual({
      ok: false,
      error: 'a connection may be in at most 3 rooms; leave one first.',
    });
    // Re-joining a room it is already in is fine; leaving makes room for another.
    expect(await c.emitWithAck('join', 'cap-0')).toMatchObject({ ok: true });
    await c.emitWithAck('leave', 'cap-0');
    expect(await c.emitWithAck('join', 'cap-3')).toMatchObject({ ok: true });
  });

  it('rate-limits a flooding connection and lets it continue after the window', async () => {
    const flooder = await connect(server.url);
    const replies = (await Promise.all(
      Array.from({ length: EVENTS_PER_SECOND * 3 }, () => flooder.emitWithAck('join', 'flood')),
    )) as { ok: boolean; error?: string }[];
    const refused = replies.filter((r) => !r.ok);
    expect(refused.length).toBeGreaterThanOrEqual(EVENTS_PER_SECOND);
    expect(refused[0]!.error).toBe(
      `rate limit exceeded: at most ${EVENTS_PER_SECOND} events per second per connection.`,
    );
    await sleep(1100);
    expect(await flooder.emitWithAck('join', 'flood')).toMatchObject({ ok: true });
    await bystanderUnaffected('after-flood');
  });

  it('closes a connection that sends more than maxPayloadBytes, and only that one', async () => {
    const big = await connect(server.url);
    const reason = new Promise<string>((resolve) => big.once('disconnect', (r) => resolve(r)));
    big.emit('publish', { room: 'calm', data: 'x'.repeat(MAX_PAYLOAD * 2) });
    expect(await reason).toMatch(/^transport (close|error)$/);
    await sleep(200);
    expect(
      bystanderInbox.some((m) => String((m as { data: unknown }).data).length > MAX_PAYLOAD),
    ).toBe(false);
    await bystanderUnaffected('after-oversized');
  });

  it('closes raw connections that send malformed packets', async () => {
    // Not an Engine.IO packet type.
    expect(await rawSession(server, 'zzz')).toBeGreaterThanOrEqual(1000);
    // A message packet whose body is not msgpack (0xc1 is never used by msgpack).
    expect(await rawSession(server, Buffer.from([0xc1, 0xff, 0x00]))).toBeGreaterThanOrEqual(1000);
    // A text message packet on the msgpack server.
    expect(await rawSession(server, '42["publish",{}]')).toBeGreaterThanOrEqual(1000);
    // Broken JSON on the JSON-parser server.
    expect(await rawSession(jsonServer, '42["publish",{')).toBeGreaterThanOrEqual(1000);
    expect(await jsonServer.readyz()).toBe(200);
    await bystanderUnaffected('after-malformed');
  });

  it('applies CORS origins, heartbeats and the payload limit from the config to the handshake', async () => {
    const handshake = (origin: string): Promise<Response> =>
      fetch(`${jsonServer.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    const allowed = await handshake('https://app.example');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const open = JSON.parse((await allowed.text()).slice(1)) as Record<string, unknown>;
    expect(open).toMatchObject({ pingInterval: 7000, pingTimeout: 3000, maxPayload: 50_000 });
    const other = await handshake('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('exits 78 on an invalid config with one stderr line per problem', () => {
    ensureServerBuilt();
    const file = join(fleet.dir, 'invalid.json');
    writeFileSync(
      file,
      JSON.stringify({ port: 70000, parser: 'xml', redis: { nodes: [] }, debug: true }),
    );
    const r = spawnSync(ENTRYPOINT, [], {
      env: { ...process.env, SOCKETFLEET_CONFIG: file },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr.trim().split('\n')).toEqual([
      'config: port: must be at most 65535.',
      'config: parser: must be one of "msgpack", "json".',
      'config: redis.nodes: must have at least 1 item(s).',
      'config: debug: is not a known field; remove it.',
    ]);
  });
});
