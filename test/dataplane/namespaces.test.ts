import { afterAll, describe, expect, it } from 'vitest';
import { createServer as createHttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { Manager } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';
import { attach, ServerConfigSchema, type Ops } from '../../server-image/src/index.js';
import { collect, connect } from './support/clients.js';
import { freePort, sleep, until } from './support/fleet.js';
import { useLibraryServers, type LibraryServer } from './support/library-servers.js';

/** A plain Socket.IO app with a static and a dynamic namespace besides `/`. */
function app(io: Server, ops: Ops): void {
  const handler = (socket: Socket): void => {
    socket.on('join', async (room: string, ack: (subscribed: boolean) => void) => {
      await socket.join(room);
      ack(await ops.roomSubscribed(room, socket.nsp));
    });
    socket.on('who', (ack: (id: string) => void) => ack(socket.id));
  };
  io.on('connection', handler);
  io.of('/custom').on('connection', handler);
  io.of(/^\/team-\d+$/).on('connection', handler);
}

const url = (s: LibraryServer, nsp = ''): string => `http://127.0.0.1:${s.port}${nsp}`;

async function metric(s: LibraryServer, name: string): Promise<number> {
  // Through /metrics, as Prometheus reads it: the gauges are sampled there.
  const text = await (await fetch(`http://127.0.0.1:${s.opsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('every namespace gets the same care', () => {
  const servers = useLibraryServers('namespaces');
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  process.on('warning', onWarning);
  afterAll(() => {
    process.off('warning', onWarning);
  });

  it('holds 1000 dynamic namespaces without a listener leak or a warning, and broadcasts in them across servers', async () => {
    const [a, b] = await Promise.all([servers.start({}, app), servers.start({}, app)]);
    const topologyListeners = a.bus.listenerCount('topology');
    const subscriptions = (): number =>
      (a.bus as unknown as { subscriptions: Map<string, unknown> }).subscriptions.size;
    const subscribedBefore = subscriptions();
    const manager = new Manager(url(a), {
      transports: ['websocket'],
      parser: msgpackParser,
      reconnection: false,
    });
    const started = Date.now();
    const sockets = Array.from({ length: 1000 }, (_, i) => manager.socket(`/team-${i}`));
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            s.once('connect', () => resolve());
            s.once('connect_error', reject);
            s.connect();
          }),
      ),
    );
    const connectMs = Date.now() - started;
    // One engine.io connection carried all of them.
    expect(a.io.engine.clientsCount).toBe(1);
    expect(await metric(a, 'socketfleet_namespaces')).toBeGreaterThanOrEqual(1002);
    // The bus has as many listeners as with one namespace: the adapters share one registration.
    expect(a.bus.listenerCount('topology')).toBe(topologyListeners);
    expect(a.bus.listenerCount('node-lost')).toBe(1);
    expect(a.bus.listenerCount('orphanMessage')).toBe(1);

    // A room in namespace /team-777 with members on both servers gets a broadcast from either.
    const onB = await connect(url(b, '/team-777'));
    const onA = sockets[777]!;
    expect(await onA.emitWithAck('join', 'stand-up')).toBe(true);
    expect(await onB.emitWithAck('join', 'stand-up')).toBe(true);
    const gotA = collect(onA, 'note');
    const gotB = collect(onB, 'note');
    b.io
      .of('/team-777')
      .to('stand-up')
      .emit('note', 'from b', Buffer.from([7]));
    a.io.of('/team-777').to('stand-up').emit('note', 'from a');
    await until('both members to get both notes', () => gotA.length === 2 && gotB.length === 2);
    await sleep(200);
    expect([gotA.length, gotB.length]).toEqual([2, 2]);
    // Members of the same room name in another team's namespace get nothing.
    const other = sockets[778]!;
    expect(await other.emitWithAck('join', 'stand-up')).toBe(true);
    const gotOther = collect(other, 'note');
    b.io.of('/team-777').to('stand-up').emit('note', 'again');
    await until('the team-777 members to get it', () => gotA.length === 3 && gotB.length === 3);
    await sleep(200);
    expect(gotOther).toHaveLength(0);

    manager.engine.close();
    await until('the 1000 namespaces to be left', () => a.io.engine.clientsCount === 0);
    // Emptied dynamic namespaces are closed (cleanupEmptyChildNamespaces): their adapters and
    // Redis subscriptions go with them.
    await until('the emptied dynamic namespaces to be closed', async () => {
      return (await metric(a, 'socketfleet_namespaces')) <= 3;
    });
    expect(subscriptions()).toBe(subscribedBefore);
    const leaks = warnings.filter((w) => w.name === 'MaxListenersExceededWarning');
    expect(leaks.map((w) => w.message)).toEqual([]);
    console.log(
      `1000 dynamic namespaces connected in ${connectMs} ms; warnings: ${warnings.length}`,
    );
  });

  it('never takes a room name of 20 characters for a socket id, across servers', async () => {
    const [a, b, c] = await Promise.all([
      servers.start({}, app),
      servers.start({}, app),
      servers.start({}, app),
    ]);
    // Shaped like a socket id (20 of A-Za-z0-9_-), and 20 characters of any other shape.
    const rooms = ['general-chat-room-01', 'room with 20 chars!!'];
    for (const room of rooms) {
      expect(room).toHaveLength(20);
      const members = [await connect(url(a)), await connect(url(b))];
      const outsider = await connect(url(b));
      for (const m of members) expect(await m.emitWithAck('join', room)).toBe(true);
      const got = members.map((m) => collect(m, 'news'));
      const notGot = collect(outsider, 'news');
      c.io.to(room).emit('news', room, 1);
      a.io.to(room).emit('news', room, 2);
      await until(`both members of "${room}" to get both`, () => got.every((g) => g.length === 2));
      await sleep(200);
      expect(got.map((g) => g.length)).toEqual([2, 2]);
      expect(notGot).toHaveLength(0);
      // fetchSockets and emitWithAck reach the members on both servers.
      const found = await c.io.in(room).fetchSockets();
      expect(found.map((s) => s.id).sort()).toEqual(members.map((m) => m.id).sort());
      for (const m of members) m.on('ask', (ack: (id: string) => void) => ack(m.id!));
      const answers = (await c.io.to(room).timeout(5000).emitWithAck('ask')) as string[];
      expect(answers.sort()).toEqual(members.map((m) => m.id).sort());
    }
    // A real socket id still addresses that one socket from another server.
    const target = await connect(url(a));
    const inbox = collect(target, 'direct');
    c.io.to(target.id!).emit('direct', 'only you');
    await until('the socket to get its private message', () => inbox.length === 1);
  });

  it('applies cluster-wide socket operations on every server (socketsJoin, socketsLeave, disconnectSockets, serverSideEmit, except)', async () => {
    const [a, b, c] = await Promise.all([
      servers.start({}, app),
      servers.start({}, app),
      servers.start({}, app),
    ]);
    const onA = await connect(url(a, '/custom'));
    const onB = await connect(url(b, '/custom'));
    for (const m of [onA, onB]) expect(await m.emitWithAck('join', 'ops-room')).toBe(true);
    const nsp = (s: LibraryServer): ReturnType<Server['of']> => s.io.of('/custom');
    // From a server with no member: every member on every server joins a second room.
    nsp(c).in('ops-room').socketsJoin('moved-room');
    await until('both members to be in moved-room on their servers', () =>
      [nsp(a).sockets.get(onA.id!), nsp(b).sockets.get(onB.id!)].every((s) =>
        s?.rooms.has('moved-room'),
      ),
    );
    const got = [collect(onA, 'm'), collect(onB, 'm')];
    nsp(c).to('moved-room').except('nobody').emit('m', 1);
    await until('both to get the broadcast to the joined room', () =>
      got.every((g) => g.length === 1),
    );
    nsp(c).in('moved-room').socketsLeave('moved-room');
    await until('both to have left it', () =>
      [nsp(a).sockets.get(onA.id!), nsp(b).sockets.get(onB.id!)].every(
        (s) => !s?.rooms.has('moved-room'),
      ),
    );
    // except() by room across servers: onB's private room is excluded wherever it lives.
    nsp(c).to('ops-room').except(onB.id!).emit('m', 2);
    await until('onA to get the second broadcast', () => got[0]!.length === 2);
    await sleep(200);
    expect(got[1]).toHaveLength(1);
    // serverSideEmit reaches the other servers where the namespace exists.
    const heard: string[] = [];
    for (const s of [a, b]) nsp(s).on('tick', (from: string) => heard.push(from));
    nsp(c).serverSideEmit('tick', 'c');
    await until('both other servers to hear the server-side event', () => heard.length === 2);
    // disconnectSockets from a third server closes the members on theirs.
    const closed = [onA, onB].map(
      (m) => new Promise<string>((resolve) => m.once('disconnect', (reason) => resolve(reason))),
    );
    nsp(c).in('ops-room').disconnectSockets();
    expect(await Promise.all(closed)).toEqual(['io server disconnect', 'io server disconnect']);
  });

  it('gives /custom the adapter fast paths, presence and metrics of /', async () => {
    const [a, b] = await Promise.all([servers.start({}, app), servers.start({}, app)]);
    const alone = await connect(url(a, '/custom'));
    expect(await alone.emitWithAck('join', 'solo')).toBe(true);
    const skippedBefore = await metric(a, 'socketfleet_publishes_skipped_total');
    a.io.of('/custom').to('solo').emit('news', 'local only');
    // No other server has a member: the broadcast stayed off Redis.
    expect(await metric(a, 'socketfleet_publishes_skipped_total')).toBe(skippedBefore + 1);
    const remote = await connect(url(b, '/custom'));
    expect(await remote.emitWithAck('join', 'solo')).toBe(true);
    const got = collect(remote, 'news');
    a.io.of('/custom').to('solo').emit('news', 'now both');
    await until('the member on the other server to get it', () => got.length === 1);
    expect(await metric(a, 'socketfleet_publishes_skipped_total')).toBe(skippedBefore + 1);
    expect(await metric(a, 'socketfleet_rooms')).toBeGreaterThanOrEqual(1);
    expect(await metric(a, 'socketfleet_events_in_total')).toBe(1);
  });

  it('attach() gives a Server the user made the same care, and refuses one it cannot configure', async () => {
    const config = ServerConfigSchema.parse({
      port: await freePort(),
      opsPort: await freePort(),
      logLevel: 'warn',
      redis: { nodes: servers.redis().seeds() },
    });
    const login = servers.redis().serverLogin();
    await expect(attach(new Server(), { config, ...login })).rejects.toThrow(
      'attach(): the config says parser msgpack but the Server was created with the default JSON parser; create it with new Server(serverOptions(config)).',
    );
    const bound = new Server(createHttpServer(), { parser: msgpackParser });
    await expect(attach(bound, { config, ...login })).rejects.toThrow(
      'attach(): the Server is already bound to an HTTP server; create it with new Server(options) and let attach() listen on the configured port.',
    );
    await bound.close().catch(() => undefined);

    const mine = new Server({ parser: msgpackParser, connectTimeout: 5000 });
    mine.on('connection', (socket) => {
      socket.on('join', async (room: string, ack: (ok: boolean) => void) => {
        await socket.join(room);
        ack(true);
      });
    });
    const ops = await attach(mine, { config, ...login });
    try {
      await until('the attached server to be ready', () => ops.isReady());
      const other = await servers.start({}, app);
      const here = await connect(`http://127.0.0.1:${ops.port}`);
      expect(await here.emitWithAck('join', 'attached')).toBe(true);
      const got = collect(here, 'news');
      other.io.to('attached').emit('news', 'from another server');
      await until('the member on the attached server to get it', () => got.length === 1);
      const metrics = await (await fetch(`http://127.0.0.1:${ops.opsPort}/metrics`)).text();
      expect(metrics).toContain('socketfleet_connected_clients 1');
      expect(mine.engine.opts.pingInterval).toBe(config.pingIntervalMs);
    } finally {
      await ops.close();
    }
  });

  it('checks the cluster client auth on every namespace, dynamic ones included', async () => {
    const key = 'k'.repeat(48);
    const s = await servers.start({ clientAuth: 'jwt' }, app, { clientAuthKey: key });
    const { signToken } = await import('../../server-image/src/client-auth.js');
    const token = signToken(
      { sub: 'ann', exp: Math.floor(Date.now() / 1000) + 60 },
      Buffer.from(key),
    );
    for (const nsp of ['', '/custom', '/team-5']) {
      await expect(connect(url(s, nsp))).rejects.toThrow(
        'unauthorized: no token in the handshake auth',
      );
    }
    for (const nsp of ['/custom', '/team-5']) {
      const m = new Manager(url(s), {
        transports: ['websocket'],
        parser: msgpackParser,
        reconnection: false,
      });
      const sock = m.socket(nsp, { auth: { token } });
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', () => resolve());
        sock.once('connect_error', reject);
        sock.connect();
      });
      const server = s.io.of(nsp).sockets.get(sock.id!)!;
      expect(server.data).toMatchObject({ user: 'ann' });
      m.engine.close();
    }
  });
});
