import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CENSUS_EVENT,
  createServer,
  type CensusReply,
  type Socketfleet,
} from '../../server-image/src/index.js';
import { ServerConfigSchema } from '../../server-image/src/config.js';
import { closeAllClients, collect, connect, type Client } from './support/clients.js';
import { Fleet, freePort, sleep, until, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

// Three entrypoint servers over a password-protected Redis Cluster (3 masters), plus one in-process library
// server in the same cluster for the fetchSockets/serverSideEmit checks.
describe('relay across servers', () => {
  const fleet = new Fleet('relay');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let library: Socketfleet | undefined;

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    servers = await Promise.all([fleet.server(redis), fleet.server(redis), fleet.server(redis)]);
  });

  afterAll(async () => {
    closeAllClients();
    await library?.ops.close();
    await fleet.stopAll();
  });

  it('delivers a room broadcast to members on every server, exactly once, and acknowledges it', async () => {
    const [a, b, c] = await Promise.all(servers.map((s) => connect(s.url)));
    const outsider = await connect(servers[1]!.url);
    const got = { a: collect(a!), b: collect(b!), c: collect(c!), outsider: collect(outsider) };
    expect(await a!.emitWithAck('join', 'lobby')).toEqual({
      ok: true,
      room: 'lobby',
      subscribed: true,
    });
    expect(await b!.emitWithAck('join', 'lobby')).toMatchObject({ ok: true, subscribed: true });
    expect(await outsider.emitWithAck('join', 'elsewhere')).toMatchObject({ ok: true });

    // The publisher (on the third server) is not a member: it gets the ack, not the message.
    const binary = Buffer.from([0, 1, 2, 250, 251]);
    expect(
      await c!.emitWithAck('publish', { room: 'lobby', data: { text: 'hi', binary } }),
    ).toEqual({ ok: true });
    await until('both members to receive', () => got.a.length === 1 && got.b.length === 1);
    await sleep(300);
    expect(got.a).toHaveLength(1);
    expect(got.b).toHaveLength(1);
    expect(got.c).toHaveLength(0);
    expect(got.outsider).toHaveLength(0);
    const msg = got.b[0] as { room: string; data: { text: string; binary: Uint8Array } };
    expect(msg.room).toBe('lobby');
    expect(msg.data.text).toBe('hi');
    expect(Buffer.from(msg.data.binary)).toEqual(binary);

    // After leaving, a member no longer receives the room.
    expect(await b!.emitWithAck('leave', 'lobby')).toEqual({ ok: true, room: 'lobby' });
    await a!.emitWithAck('publish', { room: 'lobby', data: 2 });
    await until('a to receive its own room message', () => got.a.length === 2);
    await sleep(300);
    expect(got.b).toHaveLength(1);
  });

  it('keeps every message of a burst across servers, in order per publisher', async () => {
    const [x, y] = await Promise.all([connect(servers[0]!.url), connect(servers[2]!.url)]);
    const got = collect(y);
    await y.emitWithAck('join', 'burst');
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, i) => x.emitWithAck('publish', { room: 'burst', data: i })),
    );
    expect(acks.every((r) => (r as { ok: boolean }).ok)).toBe(true);
    await until('50 messages', () => got.length === 50);
    expect(got.map((m) => (m as { data: number }).data)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it('answers fetchSockets and serverSideEmit from every server in the cluster', async () => {
    const port = await freePort();
    const opsPort = await freePort();
    const config = ServerConfigSchema.parse({
      port,
      opsPort,
      logLevel: 'warn',
      redis: { nodes: redis.seeds() },
    });
    library = await createServer({ config, ...redis.serverLogin() });
    await until('library server ready', () => library!.ops.isReady());

    const members: Client[] = await Promise.all(servers.map((s) => connect(s.url)));
    for (const m of members) await m.emitWithAck('join', 'census-room');
    const found = await library.io.in('census-room').fetchSockets();
    expect(found.map((s) => s.id).sort()).toEqual(members.map((m) => m.id).sort());

    const replies = (await library.io.serverSideEmitWithAck(CENSUS_EVENT)) as CensusReply[];
    expect(replies.map((r) => r.port).sort()).toEqual(servers.map((s) => s.port).sort());
    expect(replies.every((r) => r.clients >= 1 && !r.draining)).toBe(true);
  });
  it('starts through entrypoint.sh with the soft open-file limit at the hard limit', async () => {
    const limits = (pid: number): [number, number] => {
      const m = /Max open files\s+(\d+)\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
      if (!m) throw new Error('no open-files line in /proc/<pid>/limits');
      return [Number(m[1]), Number(m[2])];
    };
    const server = await fleet.server(redis, {}, { inheritedSoftNofile: 1024 });
    const [soft, hard] = limits(server.child.pid!);
    expect(soft).toBe(hard);
    // exec: the process is node itself, so SIGTERM from tini reaches the server directly.
    expect(readFileSync(`/proc/${server.child.pid}/cmdline`, 'utf8')).toContain(
      'socketfleet-server.js',
    );
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});
