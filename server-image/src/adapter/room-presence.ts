import { randomBytes } from 'node:crypto';

/**
 * Which other servers have members in each room this server has members in, learned through a
 * handshake on the room's own channel, so a broadcast to a room with no other member server can
 * skip Redis entirely without ever losing a message a stock adapter would have delivered.
 *
 * Protocol (all on the room's channel, so on the room's shard, ordered per sender):
 *  - When a room gets its first local member, the server confirms its SSUBSCRIBE, then publishes
 *    HELLO. SPUBLISH returns n, the subscribers that got it (this server included).
 *  - Every subscriber that has the room records the sender as a member server, then answers ACK
 *    (member: true); a subscriber that is just leaving answers ACK (member: false).
 *  - The joining server counts n-1 ACKs, records every member: true sender, and only then is the
 *    room "ready" here and the client's join acknowledged with subscribed: true.
 *  - When the last local member leaves, the server publishes BYE; others forget it.
 *  - A room may skip Redis only while it is ready here and no other server is recorded.
 *
 * Why no message is lost: a publish that a client causes after another client's join ack on
 * server T happens on a server S that either was subscribed at T's HELLO (then S recorded T
 * before answering, and T waited for that answer), or subscribed later (then S's own HELLO
 * reached T, which answered member: true, and S is not ready before that answer), or has no
 * member and is not subscribed (then it always publishes). Entries leave the set only through
 * BYE, which a server sends only when it has no member; its later HELLO follows the BYE on the
 * same connection, so they cannot be reordered. Lost control messages (shard outage, slow or
 * stock servers) only ever leave a room not ready, which means publishing as usual.
 *
 * HELLO and ACK also say whether the sender reads compressed broadcasts (`inflates`), so a
 * server compresses a room's broadcasts only while every other member server it knows of does:
 * a server of an older version in the room keeps its broadcasts plain.
 */

export const HELLO = 100;
export const ACK = 101;
export const BYE = 102;

export interface PresenceMessage {
  type: typeof HELLO | typeof ACK | typeof BYE;
  uid: string;
  nsp: string;
  data: { room: string; hid?: string; to?: string; member?: boolean; inflates?: boolean };
}

export interface PresenceTransport {
  /** Publishes on the room's channel; resolves with the number of subscribers reached. */
  publish(room: string, message: PresenceMessage): Promise<number>;
  /** Resolves true once this server's subscription to the room's channel is confirmed. */
  subscribed(room: string): Promise<boolean>;
}

export interface PresenceHooks {
  onHandshake?(result: 'ready' | 'timeout' | 'failed'): void;
}

interface Handshake {
  hid: string;
  acks: Set<string>;
  expected: number | undefined;
  done: (ready: boolean) => void;
}

interface RoomState {
  remotes: Set<string>;
  /** Member servers that did not say they read compressed broadcasts. */
  plainOnly: Set<string>;
  ready: boolean;
  handshake: Handshake | undefined;
  settled: Promise<boolean>;
}

export class RoomPresence {
  private readonly rooms = new Map<string, RoomState>();

  constructor(
    private readonly uid: string,
    private readonly nsp: string,
    private readonly transport: PresenceTransport,
    private readonly timeoutMs: number,
    private readonly hooks: PresenceHooks = {},
  ) {}

  /** The first local member joined: start tracking and announce this server. */
  created(room: string): void {
    const state: RoomState = {
      remotes: new Set(),
      plainOnly: new Set(),
      ready: false,
      handshake: undefined,
      settled: Promise.resolve(false),
    };
    this.rooms.set(room, state);
    this.handshake(room, state);
  }

  /** The last local member left: stop tracking and tell the others. */
  deleted(room: string): void {
    const state = this.rooms.get(room);
    if (!state) return;
    this.rooms.delete(room);
    state.handshake?.done(false);
    this.send(room, { type: BYE, data: { room } });
  }

  /** True only when a broadcast to `room` provably has no recipient on another server. */
  canSkip(room: string): boolean {
    const state = this.rooms.get(room);
    return state !== undefined && state.ready && state.remotes.size === 0;
  }

  /**
   * True only while every other member server of `room` said it reads compressed broadcasts; a
   * room this server has no member in, or whose handshake has not completed, stays plain.
   */
  canCompress(room: string): boolean {
    const state = this.rooms.get(room);
    return state !== undefined && state.ready && state.plainOnly.size === 0;
  }

  /** Resolves with whether the room's handshake completed (false if it failed or timed out). */
  whenReady(room: string): Promise<boolean> {
    return this.rooms.get(room)?.settled ?? Promise.resolve(false);
  }

  /** Forgets readiness of the given rooms (their shard went away) until they handshake again. */
  suspend(rooms: Iterable<string>): void {
    for (const room of rooms) {
      const state = this.rooms.get(room);
      if (!state) continue;
      state.ready = false;
      state.handshake?.done(false);
      state.handshake = undefined;
    }
  }

  /** Handshakes the given rooms again (their shard is back); known member servers are kept. */
  resume(rooms: Iterable<string>): void {
    for (const room of rooms) {
      const state = this.rooms.get(room);
      if (state && !state.ready && !state.handshake) this.handshake(room, state);
    }
  }

  /**
   * Servers a publish to `room` must reach (the known member servers and this one), or
   * undefined when this server has no member in it and so does not track it.
   */
  expectedSubscribers(room: string): number | undefined {
    const state = this.rooms.get(room);
    return state === undefined ? undefined : state.remotes.size + 1;
  }

  localRooms(): IterableIterator<string> {
    return this.rooms.keys();
  }

  remoteServers(room: string): ReadonlySet<string> | undefined {
    return this.rooms.get(room)?.remotes;
  }

  /** Handles a presence message from the bus; returns false if `message` is not one. */
  onMessage(message: { type: number; uid: string; data?: unknown }): boolean {
    if (message.type !== HELLO && message.type !== ACK && message.type !== BYE) return false;
    if (message.uid === this.uid) return true;
    const data = message.data as PresenceMessage['data'] | undefined;
    if (!data || typeof data.room !== 'string') return true;
    const state = this.rooms.get(data.room);
    switch (message.type) {
      case HELLO:
        // Record before answering: the answer is what lets the sender acknowledge its client.
        if (state) this.record(state, message.uid, data);
        this.send(data.room, {
          type: ACK,
          data: {
            room: data.room,
            hid: data.hid,
            to: message.uid,
            member: state !== undefined,
            inflates: true,
          },
        });
        break;
      case ACK: {
        if (!state) break;
        if (data.member) this.record(state, message.uid, data);
        const hs = state.handshake;
        if (data.to === this.uid && hs && hs.hid === data.hid) {
          hs.acks.add(message.uid);
          if (hs.expected !== undefined && hs.acks.size >= hs.expected) hs.done(true);
        }
        break;
      }
      case BYE:
        state?.remotes.delete(message.uid);
        state?.plainOnly.delete(message.uid);
        break;
    }
    return true;
  }

  private record(state: RoomState, uid: string, data: PresenceMessage['data']): void {
    state.remotes.add(uid);
    if (data.inflates === true) state.plainOnly.delete(uid);
    else state.plainOnly.add(uid);
  }

  private send(room: string, partial: Pick<PresenceMessage, 'type' | 'data'>): void {
    this.transport
      .publish(room, { ...partial, uid: this.uid, nsp: this.nsp })
      .catch(() => undefined);
  }

  private handshake(room: string, state: RoomState): void {
    let resolveSettled!: (ready: boolean) => void;
    state.settled = new Promise<boolean>((resolve) => {
      resolveSettled = resolve;
    });
    let finished = false;
    const hs: Handshake = {
      hid: randomBytes(6).toString('hex'),
      acks: new Set(),
      expected: undefined,
      done: (ready) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        const current = state.handshake === hs && this.rooms.get(room) === state;
        if (current) {
          state.handshake = undefined;
          state.ready = ready;
        }
        this.hooks.onHandshake?.(
          ready && current ? 'ready' : hs.expected === undefined ? 'failed' : 'timeout',
        );
        resolveSettled(ready && current);
      },
    };
    state.handshake = hs;
    const timer = setTimeout(() => hs.done(false), this.timeoutMs);
    timer.unref();
    void (async () => {
      if (!(await this.transport.subscribed(room))) return hs.done(false);
      if (finished) return;
      let reached: number;
      try {
        reached = await this.transport.publish(room, {
          type: HELLO,
          uid: this.uid,
          nsp: this.nsp,
          data: { room, hid: hs.hid, inflates: true },
        });
      } catch {
        return hs.done(false);
      }
      hs.expected = Math.max(0, reached - 1);
      if (hs.acks.size >= hs.expected) hs.done(true);
    })();
  }
}
