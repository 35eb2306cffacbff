import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';

/** What a handler wants done with its key after it ran. */
export type Outcome =
  | { kind: 'done' }
  /** A retriable failure: requeue after the key's next backoff delay. */
  | { kind: 'retry' }
  /** Success, but look again later (e.g. a periodic check). */
  | { kind: 'requeue'; afterMs: number };

export type Handler = (key: string) => Promise<Outcome>;

export interface WorkQueueOptions {
  concurrency: number;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Called whenever the number of waiting keys changes (for the queue depth gauge). */
  onDepth?: (depth: number) => void;
}

/**
 * A work queue keyed by "namespace/name": a key is never queued twice and never processed by two
 * workers at once (an add during processing marks it dirty and it runs once more afterwards), at
 * most `concurrency` keys run in parallel, and failures back off exponentially per key.
 */
export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failureCounts = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private handler: Handler | undefined;
  private stopping = false;

  constructor(private readonly opts: WorkQueueOptions) {}

  start(handler: Handler): void {
    this.handler = handler;
    this.pump();
  }

  add(key: string): void {
    if (this.stopping) return;
    this.clearTimer(key);
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.reportDepth();
    this.pump();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Consecutive failures of a key since its last success. */
  failures(key: string): number {
    return this.failureCounts.get(key) ?? 0;
  }

  depth(): number {
    return this.pending.size;
  }

  /** Whether anything is waiting, running or scheduled. */
  isIdle(): boolean {
    return this.pending.size === 0 && this.processing.size === 0 && this.timers.size === 0;
  }

  /** Stops taking work, drops scheduled retries and waits for running handlers to finish. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const key of [...this.timers.keys()]) this.clearTimer(key);
    this.pending.clear();
    this.dirty.clear();
    this.reportDepth();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private clearTimer(key: string): void {
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t.timer);
      this.timers.delete(key);
    }
  }

  private reportDepth(): void {
    this.opts.onDepth?.(this.pending.size);
  }

  private pump(): void {
    const handler = this.handler;
    if (!handler) return;
    while (
      !this.stopping &&
      this.processing.size < this.opts.concurrency &&
      this.pending.size > 0
    ) {
      const key = this.pending.values().next().value as string;
      this.pending.delete(key);
      this.processing.add(key);
      this.reportDepth();
      void this.runOne(handler, key);
    }
  }

  private async runOne(handler: Handler, key: string): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await handler(key);
    } catch {
      // Handlers classify their own errors; a throw that escapes is a bug, retried like any failure.
      outcome = { kind: 'retry' };
    }
    this.processing.delete(key);
    if (outcome.kind === 'retry') {
      const failures = (this.failureCounts.get(key) ?? 0) + 1;
      this.failureCounts.set(key, failures);
      this.addAfter(
        key,
        backoffDelay(failures, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random),
      );
    } else {
      this.failureCounts.delete(key);
      if (outcome.kind === 'requeue') this.addAfter(key, outcome.afterMs);
    }
    if (this.dirty.delete(key)) this.add(key);
    if (this.stopping && this.processing.size === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    this.pump();
  }
}
