import type { Logger } from './logger.js';

/** What a server carried in one window; every field counts events since the previous line. */
export interface TrafficCounts {
  /** New client sessions accepted (engine.io handshakes). */
  sessions: number;
  /** Events received from clients. */
  eventsIn: number;
  /** Broadcast packets written to this server's clients. */
  delivered: number;
  /** Messages published to the Redis Cluster. */
  busOut: number;
  /** Messages from other servers received over Redis. */
  busIn: number;
  /** Publishes other servers missed (failed or short), as the metrics count them. */
  lost: number;
}

const ZERO: TrafficCounts = {
  sessions: 0,
  eventsIn: 0,
  delivered: 0,
  busOut: 0,
  busIn: 0,
  lost: 0,
};

/**
 * The traffic summary a user sees in `kubectl logs`: one info line per window in which anything
 * moved, so a quiet server stays quiet and a busy one writes one line per window, not one per
 * message (a per-delivery line would cost more than the delivery).
 */
export class TrafficLog {
  private counts: TrafficCounts = { ...ZERO };
  private timer: NodeJS.Timeout | undefined;
  private windowStart = Date.now();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  add(field: keyof TrafficCounts, n = 1): void {
    this.counts[field] += n;
  }

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Writes the line for the window so far (if anything moved) and starts a new window. */
  flush(now = Date.now()): TrafficCounts | undefined {
    const counts = this.counts;
    const windowMs = now - this.windowStart;
    this.counts = { ...ZERO };
    this.windowStart = now;
    if (Object.values(counts).every((n) => n === 0)) return undefined;
    this.logger.info({ ...counts, windowMs }, 'traffic');
    return counts;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.intervalMs > 0) this.flush();
  }
}
