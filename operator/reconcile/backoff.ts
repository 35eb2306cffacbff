export interface BackoffOptions {
  /** Delay after the first failure. */
  baseMs: number;
  /** Cap, so a long outage is retried at a steady pace instead of never. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 120_000 };

/**
 * Exponential backoff with "equal jitter": half the exponential delay is kept, the other half is
 * random, so retries of many keys that failed together (an API server restart) spread out
 * without ever retrying sooner than half the nominal delay.
 *
 * @param failures consecutive failures so far (1 for the first retry)
 * @param random a function returning [0, 1); injectable for tests
 */
export function backoffDelay(
  failures: number,
  opts: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, failures - 1);
  // 2 ** 40 already exceeds any sane cap; clamping keeps the arithmetic finite.
  const nominal = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(exponent, 40));
  const half = nominal / 2;
  return Math.round(half + random() * half);
}
