import { EventEmitter } from 'node:events';
import { createShardedAdapter } from '@socket.io/redis-adapter';
import notepack from 'notepack.io';
import type { Namespace, Socket } from 'socket.io';
import type { BroadcastOptions, ClusterMessage } from 'socket.io-adapter';
import type { ClusterBus } from './bus.js';
import { RoomPresence } from './room-presence.js';
import { compressForBus, inflateFromBus } from './bus-compression.js';
import { DeliveredIds, publishWithRepair } from './repair.js';
import { RoomSequenceGaps, RoomSequencer } from './room-gaps.js';
import { writeFrameDirect, type EngineConnection } from './direct-write.js';
import { canPreEncodeFrames, preEncodeFrame } from './ws-frame.js';
import { Recovery, type RecoveryHooks, type WireBroadcast } from './recovery.js';
import { RecoveryStore } from './recovery-store.js';
import { channelOf } from './recovery-keys.js';

/** MessageType.BROADCAST of socket.io-adapter's cluster protocol. */
const BROADCAST = 3;
/**
 * A broadcast whose data is deflated (compressBus). A type of its own, next to the presence
 * types: an adapter that does not know it ignores it ("unknown message type") rather than read
 * a broadcast without a packet.
 */
export const ZIPPED_BROADCAST = 103;

export interface FastPaths {
  /** Deliver to this server's sockets first, then publish to Redis (the sharded adapter awaits the publish first). */
  localFirst: boolean;
  /** Build one WebSocket frame per broadcast also for binary (msgpack) packets and reuse it for every recipient. */
  binaryFrames: boolean;
  /** Encode inter-server messages with msgpack instead of JSON. */
  msgpackBus: boolean;
  /**
   * Skip Redis for a room broadcast when no other server has members in the room, proven by the
   * membership handshake in room-presence.ts. Needs localFirst, and every server of the cluster
   * running it (a stock server never answers the handshake, which keeps rooms publishing).
   */
  skipLonelyRooms: boolean;
  /**
   * Write the shared frame straight to ws when engine.io has nothing queued for the socket,
   * instead of engine.io's per-packet queue, events and callbacks (see direct-write.ts).
   */
  directWrites: boolean;
  /**
   * Deflate a room broadcast (packet and options) on the bus when that saves at least an eighth
   * (bus-compression.ts), while every other member server of the room said in the membership
   * handshake that it reads compressed broadcasts. Needs msgpackBus.
   */
  compressBus: boolean;
}

export const ALL_FAST_PATHS: FastPaths = {
  localFirst: true,
  binaryFrames: true,
  msgpackBus: true,
  skipLonelyRooms: true,
  directWrites: true,
  compressBus: true,
};

/** How long a joining server waits for every member server to answer its HELLO. */
export const PRESENCE_TIMEOUT_MS = 3000;

export interface AdapterHooks {
  /** Number of local sockets a broadcast was written to. */
  onLocalDelivery?(recipients: number): void;
  onPublishFailed?(err: Error): void;
  /** A message from another server arrived over Redis (any type). */
  onBusMessage?(): void;
  /** A room broadcast stayed on this server: no other server has members in the room. */
  onPublishSkipped?(): void;
  onHandshake?(result: 'ready' | 'timeout' | 'failed'): void;
  /** A compressed broadcast from another server could not be inflated and was dropped. */
  onBusMessageDropped?(err: Error): void;
  /** A room broadcast first reached too few member servers, and a resend reached them all. */
  onPublishRepaired?(): void;
  /** Member servers a room broadcast never reached (counted once the repair gave up). */
  onPublishShort?(missing: number): void;
  /** A resent room broadcast that had already been delivered here was dropped. */
  onDuplicateDropped?(): void;
  /** Room broadcasts of another server found missing here (room-gaps.ts), and found late. */
  onSequenceGap?(missing: number): void;
  onSequenceGapFilled?(filled: number): void;
}

export interface RoomShardedAdapterOptions {
  bus: ClusterBus;
  fastPaths?: Partial<FastPaths>;
  hooks?: AdapterHooks & RecoveryHooks;
  /** Bounds of connection-state recovery's logs (used when the Server has it on). */
  recoveryLimits?: Partial<RecoveryLimitOptions>;
}

export interface RecoveryLimitOptions {
  /** Entries a room's log keeps at most, whatever their age. */
  maxLogLength: number;
  /** Packets one reconnect may replay; more and the client gets a fresh session. */
  maxReplay: number;
}

export const DEFAULT_RECOVERY_LIMITS: RecoveryLimitOptions = {
  maxLogLength: 10_000,
  maxReplay: 10_000,
};

/** socket.io-parser's EVENT packet type. */
const EVENT = 2;

interface PacketOptions {
  preEncoded: boolean;
  volatile?: boolean | undefined;
  compress?: boolean | undefined;
  wsPreEncodedFrame?: Buffer[];
}

interface Packet {
  type: number;
  nsp?: string;
  data?: unknown[];
  id?: number;
}

/**
 * The members of socket.io-adapter's ClusterAdapter (and @socket.io/redis-adapter's subclass) that
 * the fast paths use; several are public in JS but protected or undeclared in the typings.
 */
interface LibraryAdapter {
  nsp: Namespace;
  uid: string;
  rooms: Map<string, Set<string>>;
  sids: Map<string, Set<string>>;
  broadcast(packet: Packet, opts: BroadcastOptions): Promise<void> | void;
  onMessage(message: ClusterMessage, offset?: string): void;
  onRawMessage(rawMessage: Buffer, channel: Buffer | string): void;
  addAll(id: string, rooms: Set<string>): void;
  del(id: string, room: string): void;
  delAll(id: string): void;
  _encode(packet: Packet, packetOpts: PacketOptions): (string | Buffer)[];
  apply(opts: BroadcastOptions, callback: (socket: Socket) => void): void;
  computeExceptSids(exceptRooms?: Set<string>): Set<string>;
  publishAndReturnOffset(message: ClusterMessage): Promise<string>;
  doPublish(message: ClusterMessage): Promise<string>;
  computeChannel(message: ClusterMessage): string;
  serverCount(): Promise<number>;
  /** With an acknowledgement as the packet's last element, it awaits serverCount() first. */
  serverSideEmit(packet: unknown[]): Promise<void>;
  encode(message: ClusterMessage): string | Buffer;
  close(): Promise<void> | void;
  on(event: string, listener: (...args: never[]) => void): unknown;
}

/** The adapter this module builds: the library's members plus the join gate. */
export interface ShardedAdapter extends LibraryAdapter {
  /**
   * Resolves true once this server receives the room's traffic and (with skipLonelyRooms) every
   * other member server knows it, so a publish caused after that can not miss this server.
   */
  roomReady(room: string): Promise<boolean>;
  /**
   * With connection-state recovery on: saves every connected socket's session and resolves once
   * Redis has them (a draining server calls it before closing its connections). Resolves 0 when off.
   */
  saveSessions(): Promise<number>;
}

/** What the local delivery touches on a socket; notifyOutgoingListeners is private in the typings. */
interface LocalSocket {
  notifyOutgoingListeners?: (packet: Packet) => void;
  conn: EngineConnection & { transport: { supportsBinary?: boolean } };
  client: { writeToEngine(packets: (string | Buffer)[], opts: PacketOptions): void };
}

type ShardedAdapterClass = new (
  nsp: Namespace,
  pubClient: unknown,
  subClient: unknown,
  opts?: object,
) => LibraryAdapter;

let shardedAdapterClass: ShardedAdapterClass | undefined;

/**
 * @socket.io/redis-adapter exports only a factory, not its class. Building one instance against an
 * inert client and namespace yields the class to extend, so the fast paths below override the
 * library's methods instead of forking its code.
 */
function resolveShardedAdapterClass(): ShardedAdapterClass {
  if (shardedAdapterClass) return shardedAdapterClass;
  const inertClient = Object.assign(new EventEmitter(), {
    ssubscribe: (): void => undefined,
    sunsubscribe: (): void => undefined,
    spublish: (): Promise<number> => Promise.resolve(0),
  });
  const inertNamespace = { name: '/__socketfleet_probe__', server: { encoder: undefined } };
  const factory = createShardedAdapter(inertClient, inertClient) as unknown as (
    nsp: unknown,
  ) => object;
  shardedAdapterClass = factory(inertNamespace).constructor as ShardedAdapterClass;
  return shardedAdapterClass;
}

/** A bus message as every version of the adapter encodes it: JSON starts with '{', else msgpack. */
function decodeBusMessage(raw: Buffer): ClusterMessage | undefined {
  try {
    return (raw[0] === 0x7b ? JSON.parse(raw.toString()) : notepack.decode(raw)) as ClusterMessage;
  } catch {
    return undefined;
  }
}

/**
 * A logged broadcast as published (the script frames it the same way): its log id and the one
 * before it first, so receivers need no other round trip to place it.
 */
function frame(id: string, prev: string, payload: string | Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`~${id} ${prev} `),
    typeof payload === 'string' ? Buffer.from(payload) : payload,
  ]);
}

function isBinary(value: unknown): value is Buffer {
  return value instanceof Uint8Array;
}

/** Socket ids are 20 URL-safe characters (base64id); only such a name can be a remote socket. */
const SOCKET_ID_LIKE = /^[A-Za-z0-9_-]{20}$/;

/** How often local rooms are checked against the slot map, as a backstop to topology events. */
const OWNER_CHECK_MS = 1000;

interface NamespaceAdapter {
  nsp: { name: string };
  onNodeLost(node: string): void;
  onTopology(): void;
  onOrphan(channel: Buffer, message: Buffer): void;
}

/**
 * The bus events every namespace's adapter needs, listened to once per server instead of once per
 * namespace: with a listener set per adapter, dynamic namespaces (one per team, per document)
 * passed Node's limit of 10 listeners at the 11th namespace (MaxListenersExceededWarning), and
 * every orphaned message and every owner check walked all of them. One timer checks room owners
 * for every namespace, and an orphaned message goes only to the namespace its channel names.
 */
class NamespaceRegistry {
  private readonly adapters = new Map<string, NamespaceAdapter>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onNodeLost = (node: string): void => {
    for (const a of this.adapters.values()) a.onNodeLost(node);
  };
  private readonly onTopology = (): void => {
    for (const a of this.adapters.values()) a.onTopology();
  };
  private readonly onOrphan = (channel: Buffer, message: Buffer): void => {
    // socket.io#<namespace>#<room>#: namespace names hold no "#" in practice; if one does, ask all.
    const name = channel.toString();
    const end = name.indexOf('#', CHANNEL_PREFIX.length);
    const owner = end > 0 ? this.adapters.get(name.slice(CHANNEL_PREFIX.length, end)) : undefined;
    if (owner) owner.onOrphan(channel, message);
    else for (const a of this.adapters.values()) a.onOrphan(channel, message);
  };

  constructor(private readonly bus: ClusterBus) {}

  add(adapter: NamespaceAdapter): void {
    if (this.adapters.size === 0) {
      this.bus.on('node-lost', this.onNodeLost);
      this.bus.on('topology', this.onTopology);
      this.bus.on('orphanMessage', this.onOrphan);
      this.timer = setInterval(this.onTopology, OWNER_CHECK_MS);
      this.timer.unref();
    }
    this.adapters.set(adapter.nsp.name, adapter);
  }

  delete(adapter: NamespaceAdapter): void {
    if (this.adapters.get(adapter.nsp.name) !== adapter) return;
    this.adapters.delete(adapter.nsp.name);
    if (this.adapters.size > 0) return;
    this.bus.off('node-lost', this.onNodeLost);
    this.bus.off('topology', this.onTopology);
    this.bus.off('orphanMessage', this.onOrphan);
    clearInterval(this.timer);
  }
}

const CHANNEL_PREFIX = 'socket.io#';

/**
 * The room-sharded adapter: @socket.io/redis-adapter's sharded adapter in dynamic mode (one
 * channel per room, subscribed only while this server has members) on one Redis Cluster through
 * the bus, plus the fast paths of issue 7.
 */
export function createRoomShardedAdapter(
  options: RoomShardedAdapterOptions,
): (nsp: Namespace) => ShardedAdapter {
  const Base = resolveShardedAdapterClass();
  const fast: FastPaths = { ...ALL_FAST_PATHS, ...options.fastPaths };
  const hooks = options.hooks ?? {};
  const binaryFrames = fast.binaryFrames && canPreEncodeFrames;

  const bus = options.bus;
  const skipLonely = fast.skipLonelyRooms && fast.localFirst;
  const compressBus = fast.compressBus && fast.msgpackBus;

  const namespaces = new NamespaceRegistry(bus);

  class RoomShardedAdapter extends Base {
    private readonly presence: RoomPresence;
    private readonly roomChannel: (room: string) => string;
    /** The master each local room's handshake was confirmed on. */
    private readonly owners = new Map<string, string | undefined>();
    /** Local rooms whose master's connection was lost, until they handshake again. */
    private readonly suspended = new Set<string>();
    /** Called by the namespace registry below for this adapter's share of the bus events. */
    readonly onNodeLost: (node: string) => void;
    readonly onTopology: () => void;
    readonly onOrphan: (channel: Buffer, message: Buffer) => void;
    /** Id of this server's next room broadcast on the bus (see repair.ts). */
    private nextBroadcastId = 0;
    private readonly delivered = new DeliveredIds();
    private readonly roomSeq = new RoomSequencer();
    private readonly gaps = new RoomSequenceGaps();
    /** Present when the Server has connectionStateRecovery on (see recovery.ts). */
    private readonly recovery: Recovery | undefined;
    private readonly recoveryStore: RecoveryStore | undefined;

    constructor(nsp: Namespace) {
      super(nsp, bus, bus, { subscriptionMode: 'dynamic' });
      const serverOpts = (
        nsp.server as unknown as {
          opts: {
            connectionStateRecovery?: { maxDisconnectionDuration?: number };
            pingInterval?: number;
            pingTimeout?: number;
          };
        }
      ).opts;
      const csr = serverOpts.connectionStateRecovery;
      if (csr) {
        const limits = { ...DEFAULT_RECOVERY_LIMITS, ...options.recoveryLimits };
        const maxDisconnectionMs = csr.maxDisconnectionDuration ?? 120_000;
        const heartbeatMs =
          (serverOpts.pingInterval ?? 25_000) + (serverOpts.pingTimeout ?? 20_000);
        const recovery: Recovery = new Recovery(
          {
            uid: this.uid,
            nsp: nsp.name,
            decode: (raw) => decodeBusMessage(raw) as WireBroadcast | undefined,
            deliver: (message, offset, skip) => this.deliverLogged(message, offset, skip),
            pin: (holder, rooms) => this.addAll(holder, new Set(rooms)),
            unpin: (holder) => this.delAll(holder),
            roomReady: (room) => this.presence.whenReady(room),
            socket: (sid) => nsp.sockets.get(sid),
            hasRoom: (room) => this.rooms.has(room),
          },
          (this.recoveryStore = new RecoveryStore(bus, {
            maxLogLength: limits.maxLogLength,
            retentionMs: maxDisconnectionMs + heartbeatMs + 10_000,
            sessionTtlMs: maxDisconnectionMs,
          })),
          { maxDisconnectionMs, heartbeatMs, maxReplay: limits.maxReplay },
          hooks,
        );
        this.recovery = recovery;
        nsp.on('connection', (socket: Socket) => recovery.connected(socket));
      }
      const channel = (room: string): string => `socket.io#${nsp.name}#${room}#`;
      this.roomChannel = channel;
      // Every server runs the membership handshake, whatever its own skipLonelyRooms setting, so
      // a server that skips can rely on servers that do not.
      const presence = new RoomPresence(
        this.uid,
        nsp.name,
        {
          publish: (room, message) =>
            bus.spublish(channel(room), this.encode(message as unknown as ClusterMessage)),
          subscribed: (room) => {
            this.owners.set(room, bus.ownerOf(channel(room)));
            return bus.whenSubscribed(channel(room), PRESENCE_TIMEOUT_MS);
          },
        },
        PRESENCE_TIMEOUT_MS,
        { onHandshake: (result) => hooks.onHandshake?.(result) },
      );
      this.presence = presence;
      // While a room's subscription is gone (its master failed, its slot moved) this server may
      // miss another server's HELLO: stop skipping, and once the slot has an owner again,
      // subscribe there and handshake again, so both sides learn of each other.
      this.onNodeLost = (node) => {
        const lost = [...presence.localRooms()].filter((r) => this.owners.get(r) === node);
        for (const room of lost) this.suspended.add(room);
        presence.suspend(lost);
      };
      this.onTopology = () => this.recheckOwners();
      // Registered after the library's own listener, so the SSUBSCRIBE is already on its way.
      this.on('create-room', (room: string) => {
        if (!this.sids.has(room)) presence.created(room);
      });
      this.on('delete-room', (room: string) => {
        this.gaps.forgetRoom(room);
        this.recovery?.forgetRoom(room);
        this.owners.delete(room);
        this.suspended.delete(room);
        presence.deleted(room);
      });
      // A server that is leaving a room must still answer a HELLO counted while it was subscribed.
      const prefix = `socket.io#${nsp.name}#`;
      this.onOrphan = (rawChannel, raw) => {
        const name = rawChannel.toString();
        if (!name.startsWith(prefix) || name.length === prefix.length) return;
        try {
          const message = (raw[0] === 0x7b ? JSON.parse(raw.toString()) : notepack.decode(raw)) as {
            type: number;
            uid: string;
            nsp: string;
          };
          if (message.nsp === nsp.name) presence.onMessage(message);
        } catch {
          // Not ours to judge: the library ignores undecodable messages too.
        }
      };
      namespaces.add(this);
    }

    /**
     * Rooms whose slot now has another master than their handshake saw, or whose master's
     * connection was lost and is back, subscribe and handshake again there.
     */
    private recheckOwners(): void {
      const moved: string[] = [];
      for (const room of this.presence.localRooms()) {
        const channel = this.roomChannel(room);
        const owner = bus.ownerOf(channel);
        if (owner === undefined) continue;
        if (owner !== this.owners.get(room)) moved.push(room);
        else if (this.suspended.has(room) && bus.ownerReachable(channel)) moved.push(room);
      }
      for (const room of moved) this.suspended.delete(room);
      if (moved.length === 0) return;
      this.presence.suspend(moved);
      for (const room of moved) bus.resubscribe(this.roomChannel(room));
      this.presence.resume(moved);
    }

    roomReady(room: string): Promise<boolean> {
      return this.presence.whenReady(room);
    }

    saveSessions(): Promise<number> {
      return this.recovery ? this.recovery.saveAll() : Promise.resolve(0);
    }

    override addAll(id: string, rooms: Set<string>): void {
      super.addAll(id, rooms);
      this.recovery?.roomsChanged(id);
    }

    override del(id: string, room: string): void {
      super.del(id, room);
      this.recovery?.roomsChanged(id);
    }

    persistSession(session: { sid: string; pid: string; rooms: string[]; data: unknown }): void {
      this.recovery?.persist(session);
    }

    restoreSession(pid: string, offset: string): Promise<unknown> {
      return this.recovery ? this.recovery.restore(pid, offset) : Promise.resolve(null);
    }

    /** A broadcast framed with its log id (`~<id> <message>`, see recovery-store.ts). */
    override onRawMessage(rawMessage: Buffer, channel: Buffer | string): void {
      if (rawMessage[0] !== 0x7e) {
        super.onRawMessage(rawMessage, channel);
        return;
      }
      const space = rawMessage.indexOf(0x20);
      const second = space < 0 ? -1 : rawMessage.indexOf(0x20, space + 1);
      if (second < 0) return;
      const message = decodeBusMessage(rawMessage.subarray(second + 1));
      if (!message) return;
      // A server without recovery (the rollout that switches it) still delivers the broadcast.
      if (!this.recovery) {
        this.onMessage(message);
        return;
      }
      this.onLogged(
        message,
        rawMessage.subarray(1, space).toString(),
        rawMessage.subarray(space + 1, second).toString(),
      );
    }

    override close(): Promise<void> | void {
      this.recovery?.close();
      namespaces.delete(this);
      return super.close();
    }

    /**
     * The library sends a one-room broadcast to the shared channel when the room name is 20
     * characters long, taking it for a socket id; only a name shaped like one can be a socket
     * (of another server), so every other room keeps its own channel and slot.
     */
    override computeChannel(message: ClusterMessage): string {
      const m = message as unknown as {
        type: number;
        data?: { requestId?: string; opts?: { rooms?: string[] } };
      };
      const rooms = m.data?.opts?.rooms;
      if (
        m.type === BROADCAST &&
        m.data?.requestId === undefined &&
        rooms?.length === 1 &&
        rooms[0]!.length === 20 &&
        !SOCKET_ID_LIKE.test(rooms[0]!)
      ) {
        return this.roomChannel(rooms[0]!);
      }
      return super.computeChannel(message);
    }

    /** Servers subscribed to the namespace's channel, asked of the master that owns its slot. */
    override serverCount(): Promise<number> {
      return bus.shardNumSub(`socket.io#${this.nsp.name}#`);
    }

    /**
     * The library's serverSideEmit awaits serverCount() before anything else, and socket.io's
     * Namespace calls it without handling the promise: when SHARDNUMSUB fails (its master died
     * with the command in flight, "Connection is closed.") the rejection went unhandled and the
     * acknowledgement was never called, so serverSideEmitWithAck only ended at the caller's own
     * timeout. The failure is handed to the acknowledgement instead, which the caller sees.
     */
    override serverSideEmit(packet: unknown[]): Promise<void> {
      const ack = packet[packet.length - 1];
      const emitted = super.serverSideEmit(packet);
      if (typeof ack !== 'function') return emitted;
      return emitted.catch((err: unknown) => {
        (ack as (err: Error, responses: unknown[]) => void)(
          err instanceof Error ? err : new Error(String(err)),
          [],
        );
      });
    }

    /** Connection-state recovery needs the publish offset before local delivery; keep the library path then. */
    private get recoveryEnabled(): boolean {
      return Boolean(
        (this.nsp.server as unknown as { opts: { connectionStateRecovery?: unknown } }).opts
          .connectionStateRecovery,
      );
    }

    override broadcast(packet: Packet, opts: BroadcastOptions): Promise<void> | void {
      if (this.recovery) return this.broadcastRecoverable(packet, opts);
      if (!fast.localFirst) {
        return super.broadcast(packet, opts);
      }
      this.deliverLocally(packet, opts);
      if (opts.flags?.local) return;
      if (skipLonely && opts.rooms.size === 1) {
        const [room] = opts.rooms;
        if (room !== undefined && this.presence.canSkip(room)) {
          hooks.onPublishSkipped?.();
          return;
        }
      }
      // Local delivery stamped the namespace on the packet; receivers stamp their own.
      const { nsp: _stamped, ...wirePacket } = packet;
      const message = {
        type: BROADCAST,
        data: {
          packet: wirePacket,
          opts: { rooms: [...opts.rooms], except: [...(opts.except ?? [])], flags: opts.flags },
        },
      } as unknown as ClusterMessage;
      return this.publishAndReturnOffset(message).then(
        () => undefined,
        (err: unknown) =>
          hooks.onPublishFailed?.(err instanceof Error ? err : new Error(String(err))),
      );
    }

    /** Another server's numbered room broadcast: count the numbers that never came (room-gaps.ts). */
    private countGaps(
      message: ClusterMessage,
      m: { type: number; uid: string; nsp: string; data: { opts?: { rooms?: string[] } } },
    ): void {
      const seq = (message as unknown as { rseq?: unknown }).rseq;
      const rooms = m.data?.opts?.rooms;
      if (typeof seq !== 'number' || m.type !== BROADCAST || m.uid === this.uid) return;
      if (m.nsp !== this.nsp.name || rooms?.length !== 1) return;
      const { missing, filled } = this.gaps.seen(m.uid, rooms[0]!, seq);
      if (missing > 0) hooks.onSequenceGap?.(missing);
      if (filled > 0) hooks.onSequenceGapFilled?.(filled);
    }

    /**
     * With recovery on, what Socket.IO would replay goes to its room's log and out on the room's
     * channel in one script; this server's own members get it back through its subscription like
     * every other server's, so each server delivers a room in log order (which the offsets rely
     * on). A direct emit to a local socket is logged (on its id's shard) and delivered here.
     */
    private broadcastRecoverable(packet: Packet, opts: BroadcastOptions): Promise<void> | void {
      const flags = opts.flags ?? {};
      const [only] = opts.rooms.size === 1 ? opts.rooms : [undefined];
      const privateRoom = only !== undefined && SOCKET_ID_LIKE.test(only);
      const loggable = packet.type === EVENT && packet.id === undefined && !flags.volatile;
      if (flags.local || (!loggable && privateRoom && this.nsp.sockets.has(only))) {
        this.deliverLocally(packet, opts);
        return;
      }
      if (!loggable) return super.broadcast(packet, opts);
      const recovery = this.recovery!;
      const store = this.recoveryStore!;
      const { nsp: _stamped, ...wirePacket } = packet;
      const rooms = [...opts.rooms];
      const message = {
        type: BROADCAST,
        uid: this.uid,
        nsp: this.nsp.name,
        bid: this.nextBroadcastId++,
        data: { packet: wirePacket, opts: { rooms, except: [...(opts.except ?? [])], flags } },
      };
      const payload = this.encode(message);
      const log = recovery.logOf(rooms);
      const failed = (err: unknown): void =>
        hooks.onPublishFailed?.(err instanceof Error ? err : new Error(String(err)));
      if (privateRoom) {
        return store.publishLogged(log, '', payload).then(({ id, prev }) => {
          if (this.nsp.sockets.has(only)) {
            recovery.received(message as unknown as WireBroadcast, id, prev);
            return;
          }
          return bus
            .spublish(channelOf(this.nsp.name), frame(id, prev, payload))
            .then(() => undefined);
        }, failed);
      }
      const channel = channelOf(this.nsp.name, only);
      let framed: Buffer | undefined;
      return publishWithRepair({
        send: () =>
          framed === undefined
            ? store.publishLogged(log, channel, payload).then(({ id, receivers, prev }) => {
                framed = frame(id, prev, payload);
                return receivers;
              })
            : bus.spublish(channel, framed),
        expected: () => (only !== undefined ? this.presence.expectedSubscribers(only) : undefined),
        topologyChanging: () => bus.topologyChanging(),
        holdMs: bus.timings.holdMs,
        retryDelayMs: bus.timings.retryDelayMs * 2,
        onRepaired: () => hooks.onPublishRepaired?.(),
        onShort: (missing) => hooks.onPublishShort?.(missing),
      }).catch(failed);
    }

    private deliverLogged(message: WireBroadcast, offset: string, skip?: string[]): void {
      const packet = message.data.packet;
      (packet.data ??= []).push(offset);
      const except = new Set(message.data.opts.except);
      if (skip) for (const sid of skip) except.add(sid);
      this.deliverLocally(packet, {
        rooms: new Set(message.data.opts.rooms),
        except,
        flags: message.data.opts.flags ?? {},
      });
    }

    /** A logged broadcast: its log id and the id before it in its room's log came with it. */
    private onLogged(message: ClusterMessage, id: string, prev: string): void {
      const w = message as unknown as WireBroadcast & { data: { requestId?: string } };
      if (w.type !== BROADCAST || w.data?.requestId !== undefined || w.nsp !== this.nsp.name)
        return;
      if (w.uid !== this.uid) hooks.onBusMessage?.();
      this.recovery!.received(w, id, prev);
    }

    /** Broadcasts from other servers take the same single-encoding local path. */
    override onMessage(message: ClusterMessage, offset?: string): void {
      const m = message as unknown as {
        type: number;
        uid: string;
        nsp: string;
        data: {
          packet: Packet;
          zipped?: Uint8Array;
          requestId?: string;
          opts: { rooms: string[]; except: string[]; flags?: BroadcastOptions['flags'] };
        };
      };
      if (m.uid !== this.uid) hooks.onBusMessage?.();
      const id = (message as unknown as { bid?: unknown }).bid;
      if (typeof id === 'number' && m.uid !== this.uid && !this.delivered.firstTime(m.uid, id)) {
        hooks.onDuplicateDropped?.();
        return;
      }
      if (m.type === ZIPPED_BROADCAST) {
        // Our own echo needs no inflating: it is dropped below.
        if (m.uid === this.uid) return;
        try {
          if (!(m.data?.zipped instanceof Uint8Array)) {
            throw new Error('a compressed broadcast carries no compressed data');
          }
          m.data = inflateFromBus(m.data.zipped) as typeof m.data;
          m.type = BROADCAST;
          if (!Array.isArray(m.data?.opts?.rooms) || typeof m.data.packet !== 'object') {
            throw new Error('an inflated broadcast has no packet or no rooms');
          }
        } catch (err) {
          hooks.onBusMessageDropped?.(err instanceof Error ? err : new Error(String(err)));
          return;
        }
      }
      if (m.nsp === this.nsp.name && this.presence.onMessage(m)) return;
      this.countGaps(message, m);
      if (
        m.type !== BROADCAST ||
        m.data.requestId !== undefined ||
        m.uid === this.uid ||
        m.nsp !== this.nsp.name ||
        this.recoveryEnabled
      ) {
        super.onMessage(message, offset);
        return;
      }
      this.deliverLocally(m.data.packet, {
        rooms: new Set(m.data.opts.rooms),
        except: new Set(m.data.opts.except),
        flags: m.data.opts.flags ?? {},
      });
    }

    /**
     * The library's publish, with a broadcast's data deflated when that pays; the channel is
     * still chosen from the plain message, by the library's own rule.
     */
    /**
     * The library's publish, with a room broadcast's data deflated when that pays, an id for
     * receivers to drop a resend, and a resend while Redis reached fewer member servers than
     * the room has during a failover or slot move (repair.ts). The channel is still chosen
     * from the plain message, by the library's own rule.
     */
    override doPublish(message: ClusterMessage): Promise<string> {
      const m = message as unknown as {
        type: number;
        data?: { requestId?: string; opts?: { rooms?: string[] } };
      };
      const rooms = m.data?.opts?.rooms;
      const room =
        m.type === BROADCAST && m.data?.requestId === undefined && rooms?.length === 1
          ? rooms[0]!
          : undefined;
      const channel = this.computeChannel(message);
      if (room === undefined || channel !== this.roomChannel(room)) {
        return bus.spublish(channel, this.encode(message)).then(() => '');
      }
      const zipped =
        compressBus && this.presence.canCompress(room) ? compressForBus(m.data) : undefined;
      const wire = zipped ? { ...message, type: ZIPPED_BROADCAST, data: { zipped } } : message;
      const payload = this.encode({
        ...wire,
        bid: this.nextBroadcastId++,
        rseq: this.roomSeq.take(room),
      } as unknown as ClusterMessage);
      return publishWithRepair({
        send: () => bus.spublish(channel, payload),
        expected: () => this.presence.expectedSubscribers(room),
        topologyChanging: () => bus.topologyChanging(),
        holdMs: bus.timings.holdMs,
        retryDelayMs: bus.timings.retryDelayMs * 2,
        onRepaired: () => hooks.onPublishRepaired?.(),
        onShort: (missing) => hooks.onPublishShort?.(missing),
      }).then(() => '');
    }

    override encode(message: ClusterMessage): string | Buffer {
      // A msgpack map never starts with '{', which is how every version of the adapter tells JSON apart.
      return fast.msgpackBus ? notepack.encode(message) : super.encode(message);
    }

    /** socket.io-adapter's in-memory broadcast, with one pre-built frame also for binary packets. */
    private deliverLocally(packet: Packet, opts: BroadcastOptions): void {
      const flags = opts.flags ?? {};
      const plainOpts: PacketOptions = {
        preEncoded: true,
        volatile: flags.volatile,
        compress: flags.compress,
      };
      packet.nsp = this.nsp.name;
      // _encode attaches the text frame itself for string packets.
      const framedOpts: PacketOptions = { ...plainOpts };
      const encoded = this._encode(packet, framedOpts);
      const only = encoded.length === 1 ? encoded[0] : undefined;
      const binaryFrame =
        binaryFrames && framedOpts.wsPreEncodedFrame === undefined && isBinary(only);
      if (binaryFrame) framedOpts.wsPreEncodedFrame = preEncodeFrame(only);
      const frame = framedOpts.wsPreEncodedFrame;
      // The library's text frame comes in two parts (header, payload): join them once per
      // broadcast so a direct write is one buffer, one syscall.
      const directFrame =
        fast.directWrites && frame !== undefined
          ? frame.length === 1
            ? frame
            : [Buffer.concat(frame)]
          : undefined;
      let recipients = 0;
      this.forEachRecipient(opts, (socket) => {
        const s = socket as unknown as LocalSocket;
        if (typeof s.notifyOutgoingListeners === 'function') s.notifyOutgoingListeners(packet);
        recipients++;
        // A client that asked for base64 (b64=1) must not get a raw binary frame.
        const useFrame = !binaryFrame || s.conn.transport.supportsBinary !== false;
        if (useFrame && directFrame && writeFrameDirect(s.conn, directFrame)) return;
        s.client.writeToEngine(encoded, useFrame ? framedOpts : plainOpts);
      });
      hooks.onLocalDelivery?.(recipients);
    }

    /**
     * The library's apply() for a broadcast's recipients, without its duplicate check when the
     * broadcast names one room. apply() collects every recipient's id in a new Set so that a
     * socket in several of the rooms is written to once; one room's member Set cannot hold an id
     * twice, so for the usual broadcast that is a hash insert and lookup per recipient for
     * nothing: about 2% of the servers' busy CPU with room affinity under `npm run bench` (perf).
     */
    private forEachRecipient(opts: BroadcastOptions, callback: (socket: Socket) => void): void {
      if (opts.rooms.size !== 1) {
        this.apply(opts, callback);
        return;
      }
      const [room] = opts.rooms;
      const members = this.rooms.get(room!);
      if (members === undefined) return;
      const except = opts.except?.size ? this.computeExceptSids(opts.except) : undefined;
      for (const id of members) {
        if (except?.has(id)) continue;
        const socket = this.nsp.sockets.get(id);
        if (socket !== undefined) callback(socket);
      }
    }
  }

  // socket.io calls `new adapter(nsp)`, so this must be a constructible function, not an arrow.
  return function roomShardedAdapter(nsp: Namespace): ShardedAdapter {
    return new RoomShardedAdapter(nsp);
  };
}
