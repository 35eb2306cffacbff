/**
 * Consistent-hash ring mapping a room name to a shard index. Pure and deterministic, so every
 * server process (and any tool) computes the same owner for a room without coordination, and
 * growing from N to N+1 shards moves only the rooms that land on the new shard's points (~1/(N+1)).
 */

/** Points per shard: enough that shard loads stay within a few percent of each other. */
export const DEFAULT_VIRTUAL_NODES = 160;

/** FNV-1a over UTF-16 code units, then murmur3's fmix32 so nearby keys spread over the ring. */
export function hash32(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashRing {
  readonly shardCount: number;
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(shardCount: number, virtualNodes: number = DEFAULT_VIRTUAL_NODES) {
    if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 65535) {
      throw new Error(`shard count must be an integer from 1 to 65535, got ${shardCount}.`);
    }
    this.shardCount = shardCount;
    const entries: [number, number][] = [];
    for (let shard = 0; shard < shardCount; shard++) {
      for (let v = 0; v < virtualNodes; v++) entries.push([hash32(`shard-${shard}#${v}`), shard]);
    }
    // Ties are broken by shard index so the order never depends on insertion order.
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(entries, (e) => e[0]);
    this.owners = Uint16Array.from(entries, (e) => e[1]);
  }

  /** The shard that owns `key`: the first point clockwise from the key's hash. */
  shardFor(key: string): number {
    const h = hash32(key);
    const points = this.points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === points.length ? 0 : lo]!;
  }
}
