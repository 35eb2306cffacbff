import calculateSlot from 'cluster-key-slot';

/**
 * Key names of connection-state recovery on the Redis Cluster. A room's log must live in the
 * slot of the room's shard channel, so that one script can append to it and SPUBLISH the same
 * message (Redis refuses a script that touches two slots), and so that resharding moves a
 * room's history together with its traffic.
 */

/** The shard channel of a room (or of the namespace when `room` is undefined), as the adapter names it. */
export function channelOf(nsp: string, room?: string): string {
  return room === undefined ? `socket.io#${nsp}#` : `socket.io#${nsp}#${room}#`;
}

/** The hash tag Redis Cluster would use for `key` (first `{`, first `}` after it, non-empty), or undefined. */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

const tagBySlot = new Map<number, string>();

/** A short string that hashes to `slot`; found by search once per slot, for room names holding braces. */
function tagForSlot(slot: number): string {
  let tag = tagBySlot.get(slot);
  if (tag !== undefined) return tag;
  for (let i = 0; ; i++) {
    const candidate = `s${i.toString(36)}`;
    if (calculateSlot(candidate) === slot) {
      tag = candidate;
      break;
    }
  }
  tagBySlot.set(slot, tag);
  return tag;
}

/**
 * A key in the same slot as `channel`. A channel with a hash tag keeps it (a suffix does not
 * change it); one without braces becomes the tag; any other (a room name with a stray brace)
 * gets a searched tag of its slot.
 */
export function keyInSlotOf(channel: string, suffix: string): string {
  if (hashTag(channel) !== undefined) return `${channel}${suffix}`;
  if (!channel.includes('{') && !channel.includes('}')) return `{${channel}}${suffix}`;
  return `{${tagForSlot(calculateSlot(channel))}}${suffix}:${channel}`;
}

/** The bounded log of the broadcasts to one room (or to the namespace: several rooms, all sockets). */
export function logKeyOf(nsp: string, room?: string): string {
  return keyInSlotOf(channelOf(nsp, room), ':sf-log');
}

/** A saved session, spread over the shards by its private id. */
export function sessionKeyOf(nsp: string, pid: string): string {
  return `sf-session:{${pid}}:${nsp}`;
}

/** One server's delivery journal (see recovery.ts). */
export function journalKeyOf(uid: string): string {
  return `sf-journal:{${uid}}`;
}

/** Redis stream ids (`ms-seq`) in their order; -1, 0 or 1. */
export function compareIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const ma = Number(da < 0 ? a : a.slice(0, da));
  const mb = Number(db < 0 ? b : b.slice(0, db));
  if (ma !== mb) return ma < mb ? -1 : 1;
  const sa = da < 0 ? 0 : Number(a.slice(da + 1));
  const sb = db < 0 ? 0 : Number(b.slice(db + 1));
  return sa === sb ? 0 : sa < sb ? -1 : 1;
}

export function maxId(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/** What a client echoes back: which server's journal, which entry, which item of it. */
export interface Offset {
  server: string;
  entry: string;
  item: number;
}

export function formatOffset(o: Offset): string {
  return `${o.server}:${o.entry}:${o.item}`;
}

const OFFSET = /^([0-9a-f]{1,64}):(\d+-\d+):(\d+)$/;

/** Undefined for anything else: an application's own string last argument overwrites the client's offset. */
export function parseOffset(text: string): Offset | undefined {
  const m = OFFSET.exec(text);
  if (!m) return undefined;
  return { server: m[1]!, entry: m[2]!, item: Number(m[3]) };
}
