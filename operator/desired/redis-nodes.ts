/**
 * Redis Cluster facts as the nodes report them, parsed without I/O so the planner and its tests
 * share one reading of `CLUSTER NODES`.
 */

export const SLOT_COUNT = 16384;

export interface ClusterNodeLine {
  id: string;
  /** Empty while the node has not learnt its own address (before anyone met it). */
  ip: string;
  port: number;
  busPort: number;
  hostname: string | undefined;
  flags: string[];
  /** The master a replica follows; undefined for a master. */
  masterId: string | undefined;
  configEpoch: number;
  connected: boolean;
  /** Inclusive ranges, in the order the node lists them. */
  slots: [number, number][];
  /** Only on the reporting node's own line: slots it imports, with the node they come from. */
  importing: { slot: number; from: string }[];
  /** Only on the reporting node's own line: slots it migrates, with the node they go to. */
  migrating: { slot: number; to: string }[];
}

/** One line of `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseClusterNodeLine(line: string): ClusterNodeLine | undefined {
  const f = line.trim().split(/\s+/);
  if (f.length < 8) return undefined;
  const [id, addr, flags, master, , , epoch, link, ...slotFields] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    ...string[],
  ];
  const comma = addr.indexOf(',');
  const hostAddr = comma < 0 ? addr : addr.slice(0, comma);
  const hostname = comma < 0 ? undefined : addr.slice(comma + 1) || undefined;
  const at = hostAddr.lastIndexOf('@');
  const ipPort = at < 0 ? hostAddr : hostAddr.slice(0, at);
  const colon = ipPort.lastIndexOf(':');
  const node: ClusterNodeLine = {
    id,
    ip: ipPort.slice(0, colon),
    port: Number(ipPort.slice(colon + 1)),
    busPort: at < 0 ? 0 : Number(hostAddr.slice(at + 1)),
    hostname,
    flags: flags.split(','),
    masterId: master === '-' ? undefined : master,
    configEpoch: Number(epoch),
    connected: link === 'connected',
    slots: [],
    importing: [],
    migrating: [],
  };
  for (const s of slotFields) {
    const open = /^\[(\d+)-([<>])-([0-9a-f]+)\]$/.exec(s);
    if (open) {
      const slot = Number(open[1]);
      if (open[2] === '<') node.importing.push({ slot, from: open[3]! });
      else node.migrating.push({ slot, to: open[3]! });
      continue;
    }
    const dash = s.indexOf('-');
    const a = Number(dash < 0 ? s : s.slice(0, dash));
    const b = Number(dash < 0 ? s : s.slice(dash + 1));
    if (Number.isInteger(a) && Number.isInteger(b)) node.slots.push([a, b]);
  }
  return node;
}

export function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .split('\n')
    .map(parseClusterNodeLine)
    .filter((n): n is ClusterNodeLine => n !== undefined);
}

export function hasFlag(n: ClusterNodeLine, flag: string): boolean {
  return n.flags.includes(flag);
}

export function isMaster(n: ClusterNodeLine): boolean {
  return hasFlag(n, 'master');
}

/** Flagged failing by the reporting node (fail? = suspected, fail = agreed by a majority). */
export function isFailing(n: ClusterNodeLine): boolean {
  return hasFlag(n, 'fail') || hasFlag(n, 'fail?') || hasFlag(n, 'noaddr');
}

export function slotCount(ranges: readonly [number, number][]): number {
  return ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
}

export function expandSlots(ranges: readonly [number, number][]): number[] {
  const out: number[] = [];
  for (const [a, b] of ranges) for (let s = a; s <= b; s++) out.push(s);
  return out;
}

/** Sorted slots as inclusive ranges: [1,2,3,7] -> [[1,3],[7,7]]. */
export function toRanges(slots: readonly number[]): [number, number][] {
  const sorted = [...slots].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s === last[1] + 1) last[1] = s;
    else if (!last || s > last[1]) out.push([s, s]);
  }
  return out;
}

/** Shard i's share of the 16384 slots when n shards split them evenly: contiguous, sizes differ by at most one. */
export function evenSlotRange(i: number, n: number): [number, number] {
  const base = Math.floor(SLOT_COUNT / n);
  const extra = SLOT_COUNT % n;
  const start = i * base + Math.min(i, extra);
  return [start, start + base + (i < extra ? 1 : 0) - 1];
}

/** How many slots shard i should hold out of n. */
export function evenSlotCount(i: number, n: number): number {
  const [a, b] = evenSlotRange(i, n);
  return b - a + 1;
}
