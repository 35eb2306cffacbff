import type { Cluster } from 'ioredis';
import type { ClusterBus } from './bus.js';
import { journalKeyOf, sessionKeyOf } from './recovery-keys.js';

/**
 * The Redis side of connection-state recovery: every command is one round trip to the shard
 * that owns the key (and, for a publish, the room's channel).
 */

/**
 * Appends a broadcast to its room's log and publishes it, framed with the log id, on the room's
 * shard channel (same slot): receivers learn the id without another round trip. The log is
 * trimmed by length and by age (Redis's own clock, so servers' clocks do not matter) and expires
 * when the room falls silent. ARGV: payload, channel ('' = log only), maxLen, retentionMs.
 */
const PUBLISH_LOGGED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if last[1] then prev = last[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', '~', tostring(now - tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local n = 0
if ARGV[2] ~= '' then n = redis.call('SPUBLISH', ARGV[2], '~' .. id .. ' ' .. prev .. ' ' .. ARGV[1]) end
return {id, n, prev}
`;

/**
 * Entries after ARGV[1] (exclusive) up to ARGV[2], at most ARGV[3], with the highest id ever
 * trimmed or deleted: if that is past ARGV[1], part of what was asked for is gone.
 */
const READ_AFTER = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local deleted = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
end
return {deleted, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'COUNT', ARGV[3])}
`;

/** One journal entry with an id the server chose; ARGV: id, prev id, items, minId, ttlMs. */
const JOURNAL_APPEND = `
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[4], ARGV[1], 'p', ARGV[2], 'i', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/**
 * Saves a session unless another server owns it: a client can reconnect elsewhere (and be
 * restored there) before its old server notices the dead connection, whose later save must not
 * overwrite the new one. The restoring server takes the session over (force).
 * ARGV: owner, value, ttlMs, force ('1' or '0').
 */
const SAVE_SESSION = `
local owner = redis.call('HGET', KEYS[1], 'o')
if owner and owner ~= ARGV[1] and ARGV[4] ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'v', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** Deletes a session only if this server still owns it. ARGV: owner. */
const DELETE_SESSION = `
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface ScriptClient {
  sfSaveSession(
    key: string,
    owner: string,
    value: Buffer,
    ttlMs: number,
    force: string,
  ): Promise<number>;
  sfDeleteSession(key: string, owner: string): Promise<number>;
  sfPublishLogged(
    key: string,
    payload: string | Buffer,
    channel: string,
    maxLen: number,
    retentionMs: number,
  ): Promise<[string, number, string]>;
  sfReadAfterBuffer(
    key: string,
    after: string,
    end: string,
    count: number,
  ): Promise<[Buffer, [Buffer, Buffer[]][]]>;
  sfJournalAppend(
    key: string,
    id: string,
    prev: string,
    items: string,
    minId: string,
    ttlMs: number,
  ): Promise<number>;
}

export interface StreamEntry {
  id: string;
  fields: Map<string, Buffer>;
}

export interface ReadResult {
  /** False when the key does not exist (expired, or never written). */
  exists: boolean;
  /** Highest id trimmed or deleted so far. */
  deleted: string;
  entries: StreamEntry[];
}

export interface RecoveryLimits {
  /** Entries a room's log keeps at most (approximately: Redis trims whole nodes). */
  maxLogLength: number;
  /** How long log and journal entries are kept, and how long a session outlives its socket. */
  retentionMs: number;
  sessionTtlMs: number;
}

export class RecoveryStore {
  private readonly cluster: Cluster & ScriptClient;

  constructor(
    private readonly bus: ClusterBus,
    private readonly limits: RecoveryLimits,
  ) {
    const cluster = bus.cluster;
    if (!('sfPublishLogged' in cluster)) {
      cluster.defineCommand('sfPublishLogged', { numberOfKeys: 1, lua: PUBLISH_LOGGED });
      cluster.defineCommand('sfReadAfter', { numberOfKeys: 1, lua: READ_AFTER });
      cluster.defineCommand('sfJournalAppend', { numberOfKeys: 1, lua: JOURNAL_APPEND });
      cluster.defineCommand('sfSaveSession', { numberOfKeys: 1, lua: SAVE_SESSION });
      cluster.defineCommand('sfDeleteSession', { numberOfKeys: 1, lua: DELETE_SESSION });
    }
    this.cluster = cluster as Cluster & ScriptClient;
  }

  /**
   * Appends to `logKey` and publishes on `channel` ('' for none); resolves with the log id, the
   * receivers reached and the id before it in the log (receivers spot a gap with it).
   */
  publishLogged(
    logKey: string,
    channel: string,
    payload: string | Buffer,
  ): Promise<{ id: string; receivers: number; prev: string }> {
    return this.bus
      .hold(channel === '' ? logKey : channel, () =>
        this.cluster.sfPublishLogged(
          logKey,
          payload,
          channel,
          this.limits.maxLogLength,
          this.limits.retentionMs,
        ),
      )
      .then(([id, n, prev]) => ({ id: String(id), receivers: Number(n), prev: String(prev) }));
  }

  async readAfter(key: string, after: string, end: string, count: number): Promise<ReadResult> {
    const [deleted, rows] = await this.bus.retrying(() =>
      this.cluster.sfReadAfterBuffer(key, after, end, count),
    );
    const deletedId = deleted.toString();
    return {
      exists: deletedId !== '',
      deleted: deletedId === '' ? '0-0' : deletedId,
      entries: rows.map(([id, flat]) => {
        const fields = new Map<string, Buffer>();
        for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!.toString(), flat[i + 1]!);
        return { id: id.toString(), fields };
      }),
    };
  }

  /**
   * Sent again on a moving slot's answers like a read: an entry's explicit id makes a late
   * retry fail rather than land out of order, so a journal can lose an entry but never reorder.
   */
  appendJournal(uid: string, id: string, prev: string, items: string): Promise<number> {
    const ms = Number(id.slice(0, id.indexOf('-')));
    return this.bus.retrying(() =>
      this.cluster.sfJournalAppend(
        journalKeyOf(uid),
        id,
        prev,
        items,
        `${ms - this.limits.retentionMs}-0`,
        this.limits.retentionMs,
      ),
    );
  }

  /**
   * Resolves false when another server owns the session (see SAVE_SESSION), or when a moving
   * slot refused it and `stillLatest()` says a newer save of it was issued since (sending this
   * one again could overwrite that one).
   */
  saveSession(
    nsp: string,
    pid: string,
    owner: string,
    value: Buffer,
    ttlMs: number,
    force: boolean,
    stillLatest: () => boolean = () => true,
  ): Promise<boolean> {
    let tries = 0;
    return this.bus
      .retrying(() =>
        tries++ > 0 && !stillLatest()
          ? Promise.resolve(0)
          : this.cluster.sfSaveSession(
              sessionKeyOf(nsp, pid),
              owner,
              value,
              ttlMs,
              force ? '1' : '0',
            ),
      )
      .then((n) => Number(n) === 1);
  }

  loadSession(nsp: string, pid: string): Promise<Buffer | null> {
    return this.bus.retrying(() => this.cluster.hgetBuffer(sessionKeyOf(nsp, pid), 'v'));
  }

  deleteSession(nsp: string, pid: string, owner: string): Promise<unknown> {
    return this.cluster.sfDeleteSession(sessionKeyOf(nsp, pid), owner);
  }
}
