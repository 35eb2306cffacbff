/**
 * How long `up` waits before replacing crashed processes, like the kubelet's CrashLoopBackOff:
 * the first restart after `baseMs`, each further one twice as late up to `maxMs`, and the count
 * starts over once the fleet has stayed healthy for `stableMs` after a restart. Without it a
 * process that fails at start (bad config, a port taken) is restarted every tick forever.
 */
export class CrashBackoff {
  private restarts = 0;
  private lastRestartAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 60_000,
    private readonly stableMs = 60_000,
  ) {}

  /** A crash was seen at `now`: the number of this restart and the delay before it. */
  crashed(now: number): { restart: number; delayMs: number } {
    if (now - this.lastRestartAt > this.stableMs) this.restarts = 0;
    const delayMs = Math.min(this.baseMs * 2 ** this.restarts, this.maxMs);
    this.restarts++;
    return { restart: this.restarts, delayMs };
  }

  /** The restart happened at `now`; a crash within stableMs of it counts as the same loop. */
  restarted(now: number): void {
    this.lastRestartAt = now;
  }
}
