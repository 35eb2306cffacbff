import { describe, expect, it } from 'vitest';
import { newHistogram, summarize } from '../../operator/bench/histogram.js';
import { dueAt, dueCount, duePublishes, toMicros } from '../../operator/bench/schedule.js';

/**
 * Drives the worker's publish loop on a simulated clock: the loop wakes every 5 ms, except for one
 * stall, and each publish is delivered the instant it is sent, so all latency is the generator's.
 */
function simulate(stall: { fromMs: number; toMs: number }) {
  const runStart = 1_000_000;
  const rate = 100;
  const durationMs = 1000;
  const fromDue = newHistogram();
  let sent = 0;
  for (let t = 0; t <= durationMs; t += 5) {
    if (t > stall.fromMs && t < stall.toMs) continue;
    const now = runStart + t;
    for (const due of duePublishes(sent, runStart, now, durationMs, rate)) {
      sent++;
      fromDue.recordValue(toMicros(now - due));
    }
  }
  return { sent, fromDue: summarize(fromDue) };
}

describe('open-loop publish schedule', () => {
  it('makes publish n due (n + 1) / rate seconds after the start, capped at the total', () => {
    expect(dueAt(1000, 0, 100)).toBe(1010);
    expect(dueAt(1000, 9, 100)).toBe(1100);
    expect(dueCount(95, 1000, 100)).toBe(9);
    expect(dueCount(5000, 1000, 100)).toBe(100);
    expect(dueCount(-3, 1000, 100)).toBe(0);
  });

  it('shows a stalled generator in the latency instead of hiding it', () => {
    const steady = simulate({ fromMs: 2000, toMs: 2000 });
    const stalled = simulate({ fromMs: 200, toMs: 700 });
    expect(steady.sent).toBe(100);
    expect(stalled.sent).toBe(100);
    expect(steady.fromDue.maxMs).toBeLessThan(5);
    // The 500 ms stall holds back ~50 publishes; the first of them waited ~490 ms.
    expect(stalled.fromDue.maxMs).toBeGreaterThan(480);
    expect(stalled.fromDue.p90Ms).toBeGreaterThan(100);
  });
});
