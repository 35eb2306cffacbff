import { describe, expect, it } from 'vitest';
import { rateLimit, TokenBucket } from '../../server-image/src/rate-limit.js';

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

describe('rateLimit() socket middleware', () => {
  it('passes events within the budget and refuses the rest with one sentence', () => {
    const passed: unknown[] = [];
    const errors: string[] = [];
    const middleware = rateLimit({ eventsPerSecond: 3 });
    for (let i = 0; i < 5; i++) {
      middleware(['e', i], (err) => (err ? errors.push(err.message) : passed.push(i)));
    }
    expect(passed).toEqual([0, 1, 2]);
    expect(errors).toEqual(
      Array.from(
        { length: 2 },
        () => 'rate limit exceeded: at most 3 events per second per connection.',
      ),
    );
  });

  it('hands a refused packet to onLimited instead, without calling next', () => {
    const limited: unknown[][] = [];
    let nexts = 0;
    const middleware = rateLimit({
      eventsPerSecond: 1,
      onLimited: (packet) => limited.push(packet),
    });
    middleware(['a'], () => nexts++);
    middleware(['b', 1], () => nexts++);
    expect(nexts).toBe(1);
    expect(limited).toEqual([['b', 1]]);
  });
});
