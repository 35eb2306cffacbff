import notepack from 'notepack.io';
import type { Socket } from 'socket.io';
import {
  compareIds,
  formatOffset,
  logKeyOf,
  maxId,
  parseOffset,
  type Offset,
} from './recovery-keys.js';
import type { RecoveryStore, StreamEntry } from './recovery-store.js';

/**
 * Connection-state recovery across servers on a sharded Redis Cluster.
 *
 * Every broadcast that Socket.IO would replay (an event without acknowledgement, not volatile,
 * not local) is appended to a bounded log on the shard of its room (recovery-store.ts), in the
 * same script that publishes it; receivers learn its log id from the published frame.
 *
 * The offset a client echoes back names only the last packet it received, while its rooms'
 * logs sit on different shards with unrelated ids. What links them is the order in which its
 * server delivered packets of different rooms: each server writes that order to its own
 * delivery journal in Redis, one entry per batch of deliveries (an event-loop turn), and
 * delivers a batch only once its entry is stored. The offset of a delivered packet is
 * `<server>:<journal entry>:<item>`. A session holds, per log of the socket (each room, its own
 * id's room, the namespace), the last id the client surely had at a journal point (`base`):
 * the point of its last heartbeat answer (a pong proves every earlier frame arrived). On
 * reconnect, the journal from `base` up to the client's offset says exactly which ids of each
 * log it had; the rest of each log is replayed, merged by id, and journaled on the new server
 * so its offsets chain on. A server SIGKILLed mid-batch delivered nothing it had not journaled.
 */

/** Socket.IO's reasons after which a session is kept (the client did not leave on purpose). */
const RECOVERABLE = new Set([
  'transport error',
  'transport close',
  'forced close',
  'ping timeout',
  'server shutting down',
  'forced server close',
]);

export interface WireBroadcast {
  type: number;
  uid: string;
  nsp: string;
  bid?: number;
  data: {
    packet: { type: number; data?: unknown[]; id?: number; nsp?: string };
    opts: { rooms: string[]; except: string[]; flags?: Record<string, unknown> };
  };
}

export interface RecoveryHost {
  uid: string;
  nsp: string;
  decode(raw: Buffer): WireBroadcast | undefined;
  /** Writes a broadcast to this server's members, with `offset` as its last argument. */
  deliver(message: WireBroadcast, offset: string, skipSids?: string[]): void;
  /** Keeps the rooms subscribed (and their traffic flowing here) while a session is restored. */
  pin(holder: string, rooms: string[]): void;
  unpin(holder: string): void;
  roomReady(room: string): Promise<boolean>;
  socket(sid: string): Socket | undefined;
  hasRoom(room: string): boolean;
}

export interface RecoverySettings {
  maxDisconnectionMs: number;
  /** pingInterval + pingTimeout: how long a dead connection can go unnoticed. */
  heartbeatMs: number;
  /** Replays longer than this fail (the client gets a fresh session). */
  maxReplay: number;
}

export interface RecoveryHooks {
  onJournalFailed?(err: Error): void;
  /** With 'error', what the restore threw (Socket.IO swallows it and hands out a fresh session). */
  onRestore?(
    result: 'recovered' | 'expired' | 'unknown-offset' | 'gap' | 'too-long' | 'error',
    err?: Error,
  ): void;
  onReplayed?(packets: number): void;
  onSessionSaveFailed?(err: Error): void;
  /** A broadcast this server already delivered arrived again (resend, or after a gap fill). */
  onDuplicateDropped?(): void;
  /** Broadcasts pub/sub lost on the way here, read from their room's log instead. */
  onGapFilled?(entries: number): void;
  onGapFillFailed?(err: Error): void;
}

interface Item {
  log: string;
  id: string;
  message?: WireBroadcast;
}

interface Capture {
  logs: Set<string>;
  items: Item[];
}

interface Track {
  pid: string;
  /** Journal entry (exclusive) from which this server's deliveries count for the socket. */
  base: string;
  /** Last id of each log the client surely had at `base`. */
  pos: Map<string, string>;
  /** Ids the socket was given beyond `pos` when it was restored here (its replay). */
  floor: Map<string, string>;
  pending?: { base: string; pos: Map<string, string> };
  /** Restored here: saves take the session over from the server it came from until one did. */
  takeOver?: boolean;
  /** Saves issued so far: a save refused by a moving slot is sent again only if still the last. */
  saves?: number;
}

interface SavedSession {
  sid: string;
  rooms: string[];
  data: unknown;
  srv: string;
  base: string;
  pos: [string, string][];
}

export interface RestoredSession {
  sid: string;
  pid: string;
  rooms: string[];
  data: unknown;
  missedPackets: unknown[][];
}

const SID_LIKE = /^[A-Za-z0-9_-]{20}$/;
/** A live copy later than this after a replay is not waited for any more. */
const SUPPRESS_MS = 30_000;

export class Recovery {
  /** Last log id delivered here, per log: the position a joining socket starts from. */
  readonly lastDelivered = new Map<string, string>();
  /** Last log id handed to the journal, per log: what the next broadcast's previous id must be. */
  private readonly lastFormed = new Map<string, string>();
  /** Logs whose gap is being read from Redis, with what arrived for them meanwhile. */
  private readonly filling = new Map<string, (Item & { prev?: string })[]>();
  private readonly tracks = new Map<string, Track>();
  private readonly restoredTracks = new Map<string, Track>();
  private open: Item[] = [];
  private scheduled = false;
  private lastAssigned = '0-0';
  private lastMs = 0;
  private seq = 0;
  private tail: Promise<void> = Promise.resolve();
  /** Journal entry of the last delivered batch. */
  private head = '0-0';
  private readonly captures = new Set<Capture>();
  /** Per log, restored sockets and the id up to which their replay covered it. */
  private readonly suppress = new Map<string, Map<string, string>>();
  private readonly dirty = new Set<string>();
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly saving = new Set<Promise<unknown>>();
  readonly nsLog: string;

  constructor(
    private readonly host: RecoveryHost,
    private readonly store: RecoveryStore,
    private readonly settings: RecoverySettings,
    private readonly hooks: RecoveryHooks = {},
  ) {
    this.nsLog = logKeyOf(host.nsp);
  }

  get retentionMs(): number {
    return this.settings.maxDisconnectionMs + this.settings.heartbeatMs + 10_000;
  }

  logOf(rooms: string[]): string {
    return rooms.length === 1 ? logKeyOf(this.host.nsp, rooms[0]) : this.nsLog;
  }

  /**
   * A broadcast with its log id, and the id before it in the log, arrived (from another server
   * or as this server's echo). Pub/sub drops messages while a slot moves or a master fails
   * over, and a moved channel can deliver from its old and new shard out of order: the
   * previous id shows both, and the room's log fills the gap, so each server delivers a room's
   * broadcasts in log order, each once (a repair's resend is dropped here too).
   */
  received(message: WireBroadcast, id: string, prev: string): void {
    const rooms = message.data.opts.rooms;
    const log = this.logOf(rooms);
    // Another server's socket's private traffic (it travels on the namespace channel).
    if (rooms.length === 1 && SID_LIKE.test(rooms[0]!) && !this.host.hasRoom(rooms[0]!)) {
      let captured = false;
      for (const c of this.captures) if (c.logs.has(log)) captured = true;
      if (!captured) return;
    }
    const waiting = this.filling.get(log);
    if (waiting) {
      waiting.push({ log, id, message, prev });
      return;
    }
    this.accept({ log, id, message }, prev, true);
  }

  private accept(item: Item, prev: string | undefined, mayFill: boolean): void {
    const last = this.lastFormed.get(item.log);
    if (last !== undefined) {
      if (compareIds(item.id, last) <= 0) {
        this.hooks.onDuplicateDropped?.();
        return;
      }
      if (mayFill && prev !== undefined && compareIds(prev, last) > 0) {
        this.fill(item, last, prev);
        return;
      }
    }
    this.lastFormed.set(item.log, item.id);
    this.add(item);
  }

  /** Reads what this server missed of a log between `last` and `item`, then goes on in order. */
  private fill(item: Item, last: string, prev: string): void {
    const waiting: (Item & { prev?: string })[] = [{ ...item, prev }];
    this.filling.set(item.log, waiting);
    this.store
      .readAfter(item.log, last, `(${item.id}`, this.settings.maxReplay)
      .then(
        (read) => {
          let filled = 0;
          for (const e of read.entries) {
            const message = this.decodeEntry(e);
            if (!message) continue;
            this.accept({ log: item.log, id: e.id, message }, undefined, false);
            filled++;
          }
          this.hooks.onGapFilled?.(filled);
        },
        (err: unknown) =>
          this.hooks.onGapFillFailed?.(err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => {
        this.filling.delete(item.log);
        for (const w of waiting) this.accept(w, w.prev, false);
      })
      .catch(() => undefined);
  }

  /** This server left the room: a later subscription starts afresh. */
  forgetRoom(room: string): void {
    const log = logKeyOf(this.host.nsp, room);
    this.lastFormed.delete(log);
    this.lastDelivered.delete(log);
  }

  private add(item: Item): void {
    for (const c of this.captures) if (c.logs.has(item.log)) c.items.push(item);
    this.open.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private nextId(): string {
    const now = Date.now();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else this.seq++;
    return `${this.lastMs}-${this.seq}`;
  }

  private flush(): void {
    if (this.open.length === 0) return;
    const items = this.open;
    this.open = [];
    this.write(items, (entry) => {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        this.lastDelivered.set(item.log, maxId(this.lastDelivered.get(item.log), item.id)!);
        if (item.message)
          this.host.deliver(
            item.message,
            formatOffset({ server: this.host.uid, entry, item: i }),
            this.suppressed(item),
          );
      }
    });
  }

  /**
   * Journals `items` as one entry and runs `delivered` once it (and every earlier entry) is
   * stored. Delivery goes on when the journal cannot be written (the shard is down past the
   * hold): live traffic matters more, and a restore that meets the hole fails closed.
   */
  private write(items: Item[], delivered: (entry: string) => void, thenYield = false): string {
    const id = this.nextId();
    const prev = this.lastAssigned;
    this.lastAssigned = id;
    const written = this.store
      .appendJournal(this.host.uid, id, prev, JSON.stringify(items.map((i) => [i.log, i.id])))
      .then(
        () => undefined,
        (err: unknown) =>
          this.hooks.onJournalFailed?.(err instanceof Error ? err : new Error(String(err))),
      );
    this.tail = this.tail
      .then(() => written)
      .then(() => {
        this.head = id;
        delivered(id);
      });
    // After a replay, Socket.IO's continuation (microtasks) joins the socket to its rooms; the
    // next batch, whose journal reply may already be in, must not be delivered before that.
    if (thenYield) this.tail = this.tail.then(() => new Promise((r) => setImmediate(r)));
    return id;
  }

  /** Restored sockets that already have `item` from their replay. */
  private suppressed(item: Item): string[] | undefined {
    const bySid = this.suppress.get(item.log);
    if (!bySid) return undefined;
    const skip: string[] = [];
    for (const [sid, upTo] of bySid) {
      if (compareIds(item.id, upTo) <= 0) skip.push(sid);
      else bySid.delete(sid);
    }
    if (bySid.size === 0) this.suppress.delete(item.log);
    return skip.length > 0 ? skip : undefined;
  }

  private unsuppress(sid: string): void {
    for (const [log, bySid] of this.suppress) {
      bySid.delete(sid);
      if (bySid.size === 0) this.suppress.delete(log);
    }
  }

  // ---- sockets on this server -------------------------------------------------------------

  private logsOf(socket: Socket): string[] {
    return [this.nsLog, ...[...socket.rooms].map((r) => logKeyOf(this.host.nsp, r))];
  }

  private startOf(log: string): string {
    // A log nothing was delivered from yet: what is published from now on is owed.
    return this.lastDelivered.get(log) ?? `${Date.now()}-0`;
  }

  connected(socket: Socket): void {
    // Socket.IO gives the private id only with connectionStateRecovery on; private in its typings.
    const pid = (socket as unknown as { pid?: string }).pid;
    if (!pid) return;
    let track = this.restoredTracks.get(socket.id);
    this.restoredTracks.delete(socket.id);
    if (!track) {
      track = { pid, base: this.head, pos: new Map(), floor: new Map() };
      for (const log of this.logsOf(socket)) track.pos.set(log, this.startOf(log));
    }
    this.tracks.set(socket.id, track);
    const t = track;
    // A pong answers the latest ping: everything written before that ping has arrived.
    socket.conn.on('packetCreate', (packet: { type: string }) => {
      if (packet.type !== 'ping') return;
      const pos = new Map<string, string>();
      for (const log of this.logsOf(socket)) {
        pos.set(
          log,
          maxId(maxId(t.pos.get(log), t.floor.get(log)), this.lastDelivered.get(log)) ??
            this.startOf(log),
        );
      }
      t.pending = { base: this.head, pos };
    });
    socket.conn.on('heartbeat', () => {
      if (!t.pending) return;
      t.base = t.pending.base;
      t.pos = t.pending.pos;
      t.floor.clear();
      t.pending = undefined;
      this.markDirty(socket.id);
    });
    socket.on('disconnect', (reason: string) => {
      this.tracks.delete(socket.id);
      this.dirty.delete(socket.id);
      if (!RECOVERABLE.has(reason))
        this.track(this.store.deleteSession(this.host.nsp, t.pid, this.host.uid));
    });
    this.markDirty(socket.id);
  }

  /** Rooms joined or left: the saved session must say so before a crash can happen. */
  roomsChanged(sid: string): void {
    const track = this.tracks.get(sid);
    const socket = this.host.socket(sid);
    if (!track || !socket) return;
    const logs = new Set(this.logsOf(socket));
    for (const log of logs) if (!track.pos.has(log)) track.pos.set(log, this.startOf(log));
    for (const log of [...track.pos.keys()]) if (!logs.has(log)) track.pos.delete(log);
    this.markDirty(sid);
  }

  private markDirty(sid: string): void {
    this.dirty.add(sid);
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      const sids = [...this.dirty];
      this.dirty.clear();
      for (const sid of sids) {
        const socket = this.host.socket(sid);
        const track = this.tracks.get(sid);
        if (socket && track) this.save(socket.id, [...socket.rooms], socket.data, track, true);
      }
    }, 20);
  }

  private save(sid: string, rooms: string[], data: unknown, track: Track, live: boolean): void {
    const session: SavedSession = {
      sid,
      rooms,
      data,
      srv: this.host.uid,
      base: track.base,
      pos: [...track.pos],
    };
    let value: Buffer;
    try {
      value = notepack.encode(session);
    } catch (err) {
      this.hooks.onSessionSaveFailed?.(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    // While connected the session must outlive a crash of this server by the whole window.
    const ttl = this.settings.maxDisconnectionMs + (live ? this.settings.heartbeatMs : 0);
    const force = track.takeOver === true;
    const save = (track.saves = (track.saves ?? 0) + 1);
    this.track(
      this.store
        .saveSession(
          this.host.nsp,
          track.pid,
          this.host.uid,
          value,
          ttl,
          force,
          () => track.saves === save,
        )
        .then((saved) => {
          if (force && saved) track.takeOver = false;
        }),
    );
  }

  private track(p: Promise<unknown>): void {
    const saved = p.catch((err: unknown) =>
      this.hooks.onSessionSaveFailed?.(err instanceof Error ? err : new Error(String(err))),
    );
    this.saving.add(saved);
    void saved.finally(() => this.saving.delete(saved));
  }

  /** Socket.IO's persistSession, at a recoverable disconnect. */
  persist(session: { sid: string; pid: string; rooms: string[]; data: unknown }): void {
    const track = this.tracks.get(session.sid);
    if (!track) return;
    this.save(session.sid, session.rooms, session.data, track, false);
  }

  /** Saves every connected socket's session and waits for Redis: a drain calls it before closing them. */
  async saveAll(): Promise<number> {
    let n = 0;
    for (const [sid, track] of this.tracks) {
      const socket = this.host.socket(sid);
      if (!socket) continue;
      this.save(sid, [...socket.rooms], socket.data, track, true);
      n++;
    }
    await this.settled();
    return n;
  }

  async settled(): Promise<void> {
    while (this.saving.size > 0) await Promise.all([...this.saving]);
  }

  // ---- restore ------------------------------------------------------------------------------

  async restore(pid: string, offsetText: string): Promise<RestoredSession | null> {
    try {
      return await this.restoreOrNull(pid, offsetText);
    } catch (err) {
      this.hooks.onRestore?.('error', err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  private async restoreOrNull(pid: string, offsetText: string): Promise<RestoredSession | null> {
    const raw = await this.store.loadSession(this.host.nsp, pid);
    if (!raw) {
      this.hooks.onRestore?.('expired');
      return null;
    }
    const saved = notepack.decode<SavedSession>(raw);
    const offset = parseOffset(offsetText);
    if (!offset) {
      this.hooks.onRestore?.('unknown-offset');
      return null;
    }
    // The client reconnected here before this server noticed its old connection was dead (its
    // ping timeout): that socket has the same id and must be gone before the restored one joins.
    this.host.socket(saved.sid)?.conn.close();
    const pos = new Map(saved.pos);
    if (offset.server === saved.srv && compareIds(offset.entry, saved.base) > 0) {
      if (!(await this.advance(saved, offset, pos))) {
        this.hooks.onRestore?.('gap');
        return null;
      }
    }
    // Subscribe the rooms here first, so nothing published from now on bypasses this server.
    const holder = `~restore~${pid}`;
    const pinned = saved.rooms.filter((r) => !SID_LIKE.test(r));
    this.host.pin(holder, pinned);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      // After Socket.IO's continuation joined the socket to its rooms (microtasks), so no
      // room is left empty (and unsubscribed) in between.
      setImmediate(() => this.host.unpin(holder));
    };
    const capture: Capture = { logs: new Set(pos.keys()), items: [] };
    try {
      await Promise.all(pinned.map((r) => this.host.roomReady(r)));
      this.captures.add(capture);
      const reads = await Promise.all(
        [...pos].map(async ([log, after]) => ({
          log,
          after,
          read: await this.store.readAfter(log, after, '+', this.settings.maxReplay + 1),
        })),
      );
      this.captures.delete(capture);
      const entries: { log: string; id: string; message: WireBroadcast | undefined }[] = [];
      const seen = new Set<string>();
      for (const { log, after, read } of reads) {
        if (read.exists && compareIds(read.deleted, after) > 0) {
          this.hooks.onRestore?.('gap');
          release();
          return null;
        }
        for (const e of read.entries) {
          seen.add(`${log} ${e.id}`);
          entries.push({ log, id: e.id, message: this.decodeEntry(e) });
        }
      }
      for (const item of capture.items) {
        const after = pos.get(item.log);
        if (after === undefined || compareIds(item.id, after) <= 0) continue;
        if (seen.has(`${item.log} ${item.id}`)) continue;
        seen.add(`${item.log} ${item.id}`);
        entries.push({ log: item.log, id: item.id, message: item.message });
      }
      if (entries.length > this.settings.maxReplay) {
        this.hooks.onRestore?.('too-long');
        release();
        return null;
      }
      entries.sort((a, b) => compareIds(a.id, b.id));
      const rooms = new Set(saved.rooms);
      const bids = new Set<string>();
      const replay: Item[] = [];
      const packets: unknown[][] = [];
      const floor = new Map(pos);
      for (const e of entries) {
        floor.set(e.log, maxId(floor.get(e.log), e.id)!);
        const m = e.message;
        if (!m || !this.owed(m, e.log, rooms)) continue;
        // A publish retried after a lost reply was logged twice; its broadcast id tells.
        if (typeof m.bid === 'number') {
          const key = `${m.uid} ${m.bid}`;
          if (bids.has(key)) continue;
          bids.add(key);
        }
        replay.push({ log: e.log, id: e.id });
        packets.push([...(m.data.packet.data ?? [])]);
      }
      // The replay is one journal entry of its own, delivered (handed to Socket.IO) after every
      // earlier batch and before any later one, which this socket then receives live.
      this.flush();
      const base = this.lastAssigned;
      const entry = await new Promise<string>((resolve) => {
        const id = this.write(replay, () => resolve(id), true);
      });
      packets.forEach((data, item) =>
        data.push(formatOffset({ server: this.host.uid, entry, item })),
      );
      this.restoredTracks.set(saved.sid, { pid, base, pos, floor, takeOver: true });
      setTimeout(() => this.restoredTracks.delete(saved.sid), 30_000).unref();
      // Entries the replay read from a log before their live copy reached this server: that
      // copy must skip this socket when it comes.
      for (const [log, upTo] of floor) {
        const live = this.lastDelivered.get(log);
        if (live !== undefined && compareIds(live, upTo) >= 0) continue;
        let bySid = this.suppress.get(log);
        if (!bySid) this.suppress.set(log, (bySid = new Map<string, string>()));
        bySid.set(saved.sid, upTo);
      }
      setTimeout(() => this.unsuppress(saved.sid), SUPPRESS_MS).unref();
      release();
      this.hooks.onRestore?.('recovered');
      this.hooks.onReplayed?.(packets.length);
      return { sid: saved.sid, pid, rooms: saved.rooms, data: saved.data, missedPackets: packets };
    } catch (err) {
      this.captures.delete(capture);
      release();
      throw err;
    }
  }

  /** Moves `pos` over what the old server's journal says the client received; false on a hole. */
  private async advance(
    saved: SavedSession,
    offset: Offset,
    pos: Map<string, string>,
  ): Promise<boolean> {
    const read = await this.store.readAfter(
      `sf-journal:{${saved.srv}}`,
      saved.base,
      offset.entry,
      1_000_000,
    );
    if (!read.exists || compareIds(read.deleted, saved.base) > 0) return false;
    let prev = saved.base;
    for (const e of read.entries) {
      // Each entry names its predecessor: a batch whose write failed leaves a visible hole.
      if (e.fields.get('p')?.toString() !== prev) return false;
      prev = e.id;
      const items = JSON.parse(e.fields.get('i')?.toString() ?? '[]') as [string, string][];
      const last =
        e.id === offset.entry ? Math.min(offset.item, items.length - 1) : items.length - 1;
      for (let i = 0; i <= last; i++) {
        const [log, id] = items[i]!;
        const at = pos.get(log);
        if (at !== undefined && compareIds(id, at) > 0) pos.set(log, id);
      }
    }
    return prev === offset.entry;
  }

  private decodeEntry(e: StreamEntry): WireBroadcast | undefined {
    const raw = e.fields.get('m');
    return raw ? this.host.decode(raw) : undefined;
  }

  /** Whether a logged broadcast was meant for a socket in `rooms` (its own id included). */
  private owed(m: WireBroadcast, log: string, rooms: Set<string>): boolean {
    const opts = m.data.opts;
    if (opts.except.some((r) => rooms.has(r))) return false;
    if (log !== this.nsLog) return true;
    return opts.rooms.length === 0 || opts.rooms.some((r) => rooms.has(r));
  }

  close(): void {
    clearTimeout(this.saveTimer);
  }
}
