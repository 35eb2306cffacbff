import { describe, expect, it } from 'vitest';
import { HashRing, hash32 } from '../../server-image/src/adapter/ring.js';
import { channelRoutingKey } from '../../server-image/src/adapter/router.js';

const rooms = Array.from({ length: 20_000 }, (_, i) => `room-${i}`);

describe('consistent-hash ring', () => {
  it('is a pure function of the key and the shard count', () => {
    // Fixed values: a change here would silently move every room of a running cluster.
    expect(hash32('lobby')).toBe(1937637236);
    expect(hash32('')).toBe(2872998923);
    expect(new HashRing(4).shardFor('lobby')).toBe(3);
    expect(['a', 'b', 'c', 'd', 'e', 'f'].map((r) => new HashRing(3).shardFor(r))).toEqual([
      0, 0, 2, 0, 1, 1,
    ]);
    const a = new HashRing(3);
    const b = new HashRing(3);
    expect(rooms.every((r) => a.shardFor(r) === b.shardFor(r))).toBe(true);
  });

  it('spreads rooms over every shard within 20% of the mean', () => {
    for (const n of [2, 3, 5, 8]) {
      const ring = new HashRing(n);
      const counts = new Array<number>(n).fill(0);
      for (const r of rooms) counts[ring.shardFor(r)]!++;
      const mean = rooms.length / n;
      for (const c of counts) expect(Math.abs(c - mean) / mean).toBeLessThan(0.2);
    }
  });

  it('moves about 1/(N+1) of the rooms when shard N is added, and only to the new shard', () => {
    for (const n of [1, 2, 3, 4, 7]) {
      const before = new HashRing(n);
      const after = new HashRing(n + 1);
      let moved = 0;
      for (const r of rooms) {
        const from = before.shardFor(r);
        const to = after.shardFor(r);
        if (from !== to) {
          moved++;
          expect(to).toBe(n);
        }
      }
      const fraction = moved / rooms.length;
      const ideal = 1 / (n + 1);
      expect(fraction).toBeGreaterThan(ideal * 0.75);
      expect(fraction).toBeLessThan(ideal * 1.25);
    }
  });

  it('refuses an impossible shard count with one sentence', () => {
    expect(() => new HashRing(0)).toThrow('shard count must be an integer from 1 to 65535, got 0.');
  });
});

describe('adapter channel routing', () => {
  const prefix = 'socket.io#';
  it('routes a room channel by its room, including rooms with #', () => {
    expect(channelRoutingKey('socket.io#/#lobby#', prefix)).toBe('lobby');
    expect(channelRoutingKey('socket.io#/chat#a#b#', prefix)).toBe('a#b');
  });
  it('sends the namespace-wide channel to the home shard', () => {
    expect(channelRoutingKey('socket.io#/#', prefix)).toBeUndefined();
    expect(channelRoutingKey('socket.io#/admin#', prefix)).toBeUndefined();
  });
  it('hashes a foreign channel as a whole', () => {
    expect(channelRoutingKey('other', prefix)).toBe('other');
  });
});
