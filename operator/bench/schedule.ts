/**
 * The open-loop publish schedule. Publish `n` (0-based) of a publisher is due at
 * `runStart + (n + 1) * 1000 / rate`, whether or not the generator gets to send it then. Stamping
 * each payload with that due time, not the send time, keeps a stalled generator (a GC pause, a
 * busy event loop, a saturated core) in the measured latency instead of hiding it: the
 * coordinated-omission error of closed-loop load generators.
 */

/** How many publishes are due `elapsedMs` after the start, capped at the run's total. */
export function dueCount(elapsedMs: number, durationMs: number, rate: number): number {
  const total = Math.floor((rate * durationMs) / 1000);
  return Math.min(total, Math.floor((Math.min(Math.max(elapsedMs, 0), durationMs) * rate) / 1000));
}

/** The epoch time, in milliseconds, at which publish `n` of one publisher is due. */
export function dueAt(runStart: number, n: number, rate: number): number {
  return runStart + ((n + 1) * 1000) / rate;
}

/** Microseconds for the histograms, never below their lowest discernible value. */
export function toMicros(ms: number): number {
  return Math.max(1, Math.round(ms * 1000));
}

/** The due times of the publishes `sentSoFar`, `sentSoFar + 1`, ... that are due at `now`. */
export function duePublishes(
  sentSoFar: number,
  runStart: number,
  now: number,
  durationMs: number,
  rate: number,
): number[] {
  const due = dueCount(now - runStart, durationMs, rate);
  const out: number[] = [];
  for (let n = sentSoFar; n < due; n++) out.push(dueAt(runStart, n, rate));
  return out;
}
