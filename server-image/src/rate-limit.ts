/**
 * A token bucket refilled continuously at `ratePerSecond` and holding at most one second of
 * tokens, so a client may burst up to its per-second budget but not beyond it.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = ratePerSecond;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(
      this.ratePerSecond,
      this.tokens + ((t - this.last) * this.ratePerSecond) / 1000,
    );
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
