import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../operator/reconcile/map-limit.js';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

describe('mapLimit', () => {
  it('keeps the input order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      running++;
      peak = Math.max(peak, running);
      for (let i = 0; i < n; i++) await tick();
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(peak).toBe(3);
  });

  it('rejects with the first failure after the calls in flight settle, and starts no more', async () => {
    const finished: number[] = [];
    const call = mapLimit([1, 2, 3, 4], 3, async (n) => {
      for (let i = 0; i < n * 3; i++) await tick();
      if (n === 1) throw new Error('one failed');
      finished.push(n);
      return n;
    });
    await expect(call).rejects.toThrow('one failed');
    expect(finished.sort()).toEqual([2, 3]);
  });
});
