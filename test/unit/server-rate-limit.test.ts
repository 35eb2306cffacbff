import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../server-image/src/rate-limit.js';

describe('per-socket token bucket', () => {
  it('allows a burst of one second of events, then refills at the configured rate', () => {
    let now = 0;
    const bucket = new TokenBucket(10, () => now);
    const burst = Array.from({ length: 15 }, () => bucket.take());
    expect(burst.filter(Boolean)).toHaveLength(10);
    now += 250; // 2.5 tokens
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
    now += 60_000; // never more than one second of tokens
    expect(Array.from({ length: 12 }, () => bucket.take()).filter(Boolean)).toHaveLength(10);
  });
});
