import { randomBytes } from 'node:crypto';
import notepack from 'notepack.io';
import { beforeAll, describe, expect, it } from 'vitest';
import { compressForBus } from '../../server-image/src/adapter/bus-compression.js';
import {
  ZIPPED_BROADCAST,
  type FastPaths,
} from '../../server-image/src/adapter/sharded-adapter.js';
import type { LibraryServer as ServerHandle } from './support/library-servers.js';
import { collect, connect, type Client } from './support/clients.js';
import { sleep, until } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import { useLibraryServers } from './support/library-servers.js';

interface Captured {
  opts: { wsPreEncodedFrame?: Buffer[] };
}

/** Wraps the server-side writeToEngine of `client`'s socket to record every write, synchronously. */
function spyWrites(server: ServerHandle, client: Client): Captured[] {
  const socket = server.io.of('/').sockets.get(client.id!);
  if (!socket) throw new Error(`socket ${client.id} is not on this server`);
  const engineClient = socket.client as unknown as {
    writeToEngine(packets: unknown, opts: Captured['opts']): void;
  };
  const original = engineClient.writeToEngine.bind(engineClient);
  const writes: Captured[] = [];
  engineClient.writeToEngine = (packets, opts) => {
    writes.push({ opts });
    original(packets, opts);
  };
  return writes;
}

/**
 * Records every frame the adapter hands straight to `client`'s ws sender, synchronously. engine.io
 * calls sendFrame too, always with a completion callback; the direct path passes none.
 */
function spySendFrame(server: ServerHandle, client: Client): Buffer[][] {
  const socket = server.io.of('/').sockets.get(client.id!);
  if (!socket) throw new Error(`socket ${client.id} is not on this server`);
  const sender = (
    socket.conn.transport as unknown as { socket: { _sender: { sendFrame(list: Buffer[]): void } } }
  ).socket._sender;
  const original = sender.sendFrame.bind(sender);
  const frames: Buffer[][] = [];
  sender.sendFrame = (list, ...rest: unknown[]) => {
    if (rest[0] === undefined) frames.push(list);
    (original as (...a: unknown[]) => void)(list, ...rest);
  };
  return frames;
}

// In-process library servers, so the tests can look at what the adapter does synchronously and
// at the frames it hands to engine.io. Each fast path is compared with the same server without it.
describe('adapter fast paths', () => {
  const servers = useLibraryServers('fast-paths');
  const library = (
    fastPaths?: Partial<FastPaths>,
    parser: 'msgpack' | 'json' = 'msgpack',
  ): Promise<ServerHandle> => servers.start({ parser }, undefined, fastPaths ? { fastPaths } : {});
  const url = (h: ServerHandle): string => `http://127.0.0.1:${h.port}`;

  /** A new server with all fast paths and one client in `room`: its inbox and server-side socket. */
  const lonelyMember = async (room: string) => {
    const fast = await library();
    const member = await connect(url(fast));
    await member.emitWithAck('join', room);
    const inbox = collect(member);
    return { fast, member, inbox, socket: fast.io.of('/').sockets.get(member.id!)! };
  };

  let redis: RedisClusterFixture;
  beforeAll(() => {
    redis = servers.redis();
  });

  it('localFirst: local members are written to before the Redis publish, not after it', async () => {
    // Writes are counted at writeToEngine, which directWrites bypasses.
    const fast = await library({ directWrites: false });
    const stock = await library({ localFirst: false, directWrites: false });
    for (const [server, expectedSync] of [
      [fast, 1],
      [stock, 0],
    ] as const) {
      const client = await connect(url(server));
      const inbox = collect(client);
      await client.emitWithAck('join', 'first');
      const writes = spyWrites(server, client);
      void server.io.to('first').emit('message', { room: 'first', data: 'x' });
      // Counted in the same tick as the emit: no I/O has happened yet.
      expect(writes.length).toBe(expectedSync);
      await until('the member to receive it', () => inbox.length === 1);
    }
  });

  it('binaryFrames: one binary WebSocket frame per broadcast, shared by every recipient that accepts binary', async () => {
    const fast = await library({ directWrites: false });
    const members = await Promise.all([connect(url(fast)), connect(url(fast)), connect(url(fast))]);
    const base64 = await connect(url(fast), { forceBase64: true });
    const everyone = [...members, base64];
    for (const c of everyone) await c.emitWithAck('join', 'frames');
    const writes = everyone.map((c) => spyWrites(fast, c));
    const inboxes = everyone.map((c) => collect(c));
    const payload = { room: 'frames', data: { n: 7, bytes: Buffer.from([1, 2, 3, 255]) } };
    void fast.io.to('frames').emit('message', payload);

    const frames = writes.slice(0, 3).map((w) => w[0]!.opts.wsPreEncodedFrame);
    expect(frames[0]).toBeDefined();
    // The very same frame object for every recipient: encoded once.
    expect(frames[1]).toBe(frames[0]);
    expect(frames[2]).toBe(frames[0]);
    // FIN + binary opcode.
    expect(frames[0]![0]![0]).toBe(0x82);
    // The base64 client must not get raw binary.
    expect(writes[3]![0]!.opts.wsPreEncodedFrame).toBeUndefined();

    await until('all four to receive', () => inboxes.every((i) => i.length === 1));
    for (const inbox of inboxes) {
      const m = inbox[0] as { room: string; data: { n: number; bytes: Uint8Array } };
      expect(m.data.n).toBe(7);
      expect(Buffer.from(m.data.bytes)).toEqual(payload.data.bytes);
    }

    const stock = await library({ binaryFrames: false, directWrites: false });
    const plain = await connect(url(stock));
    await plain.emitWithAck('join', 'frames-stock');
    const plainWrites = spyWrites(stock, plain);
    void stock.io.to('frames-stock').emit('message', { room: 'frames-stock', data: 1 });
    expect(plainWrites[0]!.opts.wsPreEncodedFrame).toBeUndefined();
  });

  it('msgpackBus: inter-server messages are msgpack, and JSON from stock servers is still understood', async () => {
    const fast = await library();
    const stock = await library({ msgpackBus: false });
    const spy = redis.clusterClient();
    const seen: Buffer[] = [];
    // Only broadcasts (type 3): membership handshake messages share the channel.
    const isBroadcast = (m: Buffer): boolean =>
      (m[0] === 0x7b
        ? (JSON.parse(m.toString()) as { type: number })
        : notepack.decode<{ type: number }>(m)
      ).type === 3;
    spy.on('smessageBuffer', (_channel: Buffer, message: Buffer) => {
      if (isBroadcast(message)) seen.push(message);
    });
    await spy.ssubscribe('socket.io#/#bus#');

    const member = await connect(url(fast));
    const inbox = collect(member);
    await member.emitWithAck('join', 'bus');
    const publisherFast = await connect(url(fast));
    const publisherStock = await connect(url(stock));
    await publisherFast.emitWithAck('publish', { room: 'bus', data: 'from-fast' });
    await publisherStock.emitWithAck('publish', { room: 'bus', data: 'from-stock' });
    await until('two bus messages', () => seen.length === 2);
    expect(seen[0]![0]).not.toBe(0x7b);
    expect(notepack.decode(seen[0]!)).toMatchObject({
      type: 3,
      nsp: '/',
      data: {
        packet: { type: 2, data: ['message', { room: 'bus', data: 'from-fast' }] },
        opts: { rooms: ['bus'] },
      },
    });
    expect(seen[1]![0]).toBe(0x7b);
    // The stock (JSON) message reached the fast server's member too.
    await until('the member to get both', () => inbox.length === 2);
    expect(inbox.map((m) => (m as { data: string }).data).sort()).toEqual([
      'from-fast',
      'from-stock',
    ]);
    // msgpack is smaller than the JSON the stock adapter sends for the same message.
    expect(seen[0]!.length).toBeLessThan(seen[1]!.length);
    await sleep(100);
  });

  it('json parser: text packets share the library frame, binary attachments still cross servers', async () => {
    const [one, two] = [
      await library({ directWrites: false }, 'json'),
      await library({ directWrites: false }, 'json'),
    ];
    const local = await connect(url(one), { parser: 'json' });
    const remote = await connect(url(two), { parser: 'json' });
    for (const c of [local, remote]) await c.emitWithAck('join', 'json-room');
    const inboxes = [collect(local), collect(remote)];
    const writes = spyWrites(one, local);
    void one.io.to('json-room').emit('message', { room: 'json-room', data: 'text' });
    // FIN + text opcode: socket.io-adapter's own pre-encoded frame for string packets.
    expect(writes[0]!.opts.wsPreEncodedFrame?.[0]?.[0]).toBe(0x81);
    const bytes = Buffer.from([9, 8, 7]);
    expect(await local.emitWithAck('publish', { room: 'json-room', data: { bytes } })).toEqual({
      ok: true,
    });
    await until('both to get both', () => inboxes.every((i) => i.length === 2));
    for (const inbox of inboxes) {
      expect((inbox[0] as { data: string }).data).toBe('text');
      expect(Buffer.from((inbox[1] as { data: { bytes: Uint8Array } }).data.bytes)).toEqual(bytes);
    }
  });
  it('directWrites: the shared frame goes straight to ws, one write per recipient, and engine.io sees none of it', async () => {
    for (const parser of ['msgpack', 'json'] as const) {
      const fast = await library({}, parser);
      const members = await Promise.all([1, 2, 3].map(() => connect(url(fast), { parser })));
      const polling = await connect(url(fast), { parser, transports: ['polling'] });
      const everyone = [...members, polling];
      for (const c of everyone) await c.emitWithAck('join', `direct-${parser}`);
      const engineWrites = everyone.map((c) => spyWrites(fast, c));
      const frames = members.map((c) => spySendFrame(fast, c));
      const inboxes = everyone.map((c) => collect(c));
      void fast.io.to(`direct-${parser}`).emit('message', { room: `direct-${parser}`, n: 1 });

      // Written in the same tick, each as one buffer: the very same one for every member.
      expect(frames.map((f) => f.length)).toEqual([1, 1, 1]);
      expect(frames[0]![0]).toHaveLength(1);
      expect(frames[1]![0]![0]).toBe(frames[0]![0]![0]);
      expect(frames[0]![0]![0]![0]).toBe(parser === 'msgpack' ? 0x82 : 0x81);
      expect(engineWrites.slice(0, 3).map((w) => w.length)).toEqual([0, 0, 0]);
      // A polling client has no WebSocket: engine.io's path, as before.
      expect(engineWrites[3]).toHaveLength(1);
      await until('all four to receive', () => inboxes.every((i) => i.length === 1));
    }
  });

  it('directWrites: never overtakes what engine.io has queued, so one socket sees emits and broadcasts in order', async () => {
    const { fast, member, inbox, socket } = await lonelyMember('order');
    const direct = spySendFrame(fast, member);
    const sent: number[] = [];
    // Alternate a direct emit (engine.io's queue: the transport stays busy until its write
    // callback, so later packets wait in engine.io's buffer) with room broadcasts in one tick.
    for (let n = 0; n < 200; n++) {
      sent.push(n);
      if (n % 3 === 2) socket.emit('message', { n });
      else void fast.io.to('order').emit('message', { n });
    }
    await until('all 200 in', () => inbox.length === 200);
    expect(inbox.map((m) => (m as { n: number }).n)).toEqual(sent);
    // The two broadcasts before the first emit went direct; later ones found engine.io busy.
    expect(direct).toHaveLength(2);
  });

  it('recipients: a one-room broadcast honours except, and a socket in several named rooms gets one copy', async () => {
    const fast = await library();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => connect(url(fast))));
    for (const member of [a!, b!, c!]) await member.emitWithAck('join', 'pick-1');
    await c!.emitWithAck('join', 'pick-2');
    const inboxes = [a!, b!, c!].map((member) => collect(member));
    void fast.io.to('pick-1').except(b!.id!).emit('message', { n: 1 });
    void fast.io.to('pick-1').except('pick-2').emit('message', { n: 2 });
    void fast.io.to('pick-1').to('pick-2').emit('message', { n: 3 });
    await until('the last broadcast to reach everyone', () =>
      inboxes.every((i) => i.some((m) => (m as { n: number }).n === 3)),
    );
    await sleep(100);
    const seen = inboxes.map((i) => i.map((m) => (m as { n: number }).n));
    expect(seen).toEqual([
      [1, 2, 3],
      [2, 3],
      [1, 3],
    ]);
  });

  it('directWrites: a client that stops reading gets engine.io flow control, so volatile broadcasts are dropped, not buffered', async () => {
    const { fast, member: slow, inbox, socket: server } = await lonelyMember('slow');
    const ws = (server.conn.transport as unknown as { socket: { bufferedAmount: number } }).socket;
    // Stop reading on the client: the kernel buffers fill, then the server's socket buffer would.
    const tcp = (
      slow.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }
    ).ws._socket;
    tcp.pause();
    const payload = 'x'.repeat(64 * 1024);
    for (let n = 0; n < 2000; n++) {
      fast.io.to('slow').volatile.emit('message', { room: 'slow', data: payload });
      if (n % 100 === 99) await sleep(5);
    }
    await sleep(200);
    // 2000 x 64 KiB is 125 MiB; what engine.io allows is about one packet in flight.
    expect(ws.bufferedAmount).toBeLessThan(4 * payload.length);
    tcp.resume();
    await until('the buffered part to arrive', async () => {
      const before = inbox.length;
      await sleep(200);
      return inbox.length === before && inbox.length > 0;
    });
    expect(inbox.length).toBeLessThan(2000);
    // The connection is fine: a normal broadcast arrives.
    void fast.io.to('slow').emit('message', { room: 'slow', data: 'after' });
    await until('the normal broadcast', () =>
      inbox.some((m) => (m as { data: string }).data === 'after'),
    );
  });

  it('compressBus: a chat-sized broadcast crosses Redis deflated, arrives intact, and corrupt input is dropped and counted', async () => {
    const [fast, remote] = [await library(), await library()];
    const stock = await library({ compressBus: false });
    const spy = redis.clusterClient();
    const seen: { type: number; data: { packet?: unknown; zipped?: Buffer }; size: number }[] = [];
    spy.on('smessageBuffer', (_channel: Buffer, message: Buffer) => {
      const m = notepack.decode<{ type: number; data: { packet?: unknown; zipped?: Buffer } }>(
        message,
      );
      if (m.type === 3 || m.type === ZIPPED_BROADCAST) seen.push({ ...m, size: message.length });
    });
    const member = await connect(url(remote));
    const inbox = collect(member);
    await member.emitWithAck('join', 'zip');
    // A server compresses only the rooms it has members in and has handshaken: the publisher
    // joins. The spy subscribes only afterwards, since a subscriber that never answers the
    // handshake keeps the room from ever becoming ready.
    const fromFast = await connect(url(fast));
    expect(await fromFast.emitWithAck('join', 'zip')).toMatchObject({ subscribed: true });
    await spy.ssubscribe('socket.io#/#zip#');
    const fromStock = await connect(url(stock));
    const text = 'the quick brown fox jumps over the lazy dog; '.repeat(8);
    const noise = randomBytes(400);
    // One at a time, each awaited on the bus: they come from different Redis connections.
    const publish = async (publisher: Client, data: unknown): Promise<(typeof seen)[number]> => {
      const before = seen.length;
      expect(await publisher.emitWithAck('publish', { room: 'zip', data })).toEqual({ ok: true });
      await until('the broadcast on the bus', () => seen.length === before + 1);
      return seen[before]!;
    };
    const zipped = await publish(fromFast, { text });
    const plain = await publish(fromStock, { text });
    const incompressible = await publish(fromFast, { noise });
    expect(zipped.type).toBe(ZIPPED_BROADCAST);
    expect(Object.keys(zipped.data)).toEqual(['zipped']);
    expect(plain.type).toBe(3);
    expect(plain.data.packet).toBeDefined();
    expect(zipped.size).toBeLessThan(plain.size * 0.6);
    // Random bytes do not shrink: sent as they are, not deflated for nothing.
    expect(incompressible.type).toBe(3);
    await until('the member to get all three', () => inbox.length === 3);
    const got = inbox as { data: { text?: string; noise?: Uint8Array } }[];
    expect(got[0]!.data.text).toBe(text);
    expect(got[1]!.data.text).toBe(text);
    expect(Buffer.from(got[2]!.data.noise!)).toEqual(noise);

    // A member server that does not say it inflates (an older version) keeps the room plain
    // until it says BYE.
    const injector = redis.clusterClient();
    const inject = (message: object): Promise<unknown> =>
      injector.spublish('socket.io#/#zip#', notepack.encode({ nsp: '/', ...message }));
    await inject({ type: 100, uid: 'older-server', data: { room: 'zip', hid: 'h1' } });
    await until(
      'the older server to be known',
      () =>
        (
          fast.io.of('/').adapter as unknown as { presence: { canCompress(r: string): boolean } }
        ).presence.canCompress('zip') === false,
    );
    expect((await publish(fromFast, { text })).type).toBe(3);
    await inject({ type: 102, uid: 'older-server', data: { room: 'zip' } });
    await until(
      'the room to compress again',
      async () => (await publish(fromFast, { text })).type === ZIPPED_BROADCAST,
    );

    // Corrupt messages from "another server": not deflate at all, deflate of something that is
    // not a broadcast, no data. Each is dropped and counted, and the next broadcast arrives.
    const dropped = async (): Promise<string> =>
      remote.metrics.registry.getSingleMetricAsString('socketfleet_bus_messages_dropped_total');
    for (const [n, data] of [
      { zipped: Buffer.from('not deflate at all') },
      { zipped: compressForBus({ packet: 'no', text }) },
      {},
    ].entries()) {
      await inject({ uid: 'corrupt', type: ZIPPED_BROADCAST, data });
      await until(`drop ${n + 1} to be counted`, async () =>
        (await dropped()).endsWith(` ${n + 1}`),
      );
    }
    const before = inbox.length;
    await publish(fromFast, { text: 'after' });
    await until('the member to get the next one', () => inbox.length === before + 1);
  });
});
