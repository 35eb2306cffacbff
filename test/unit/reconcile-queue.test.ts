import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../operator/reconcile/backoff.js';
import { WorkQueue, type Outcome } from '../../operator/reconcile/queue.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('backoffDelay', () => {
  it('doubles per failure, keeps at least half the nominal delay and caps at maxMs', () => {
    const opts = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(1, opts, () => 0)).toBe(50);
    expect(backoffDelay(1, opts, () => 0.999999)).toBe(100);
    expect(backoffDelay(2, opts, () => 0)).toBe(100);
    expect(backoffDelay(3, opts, () => 0)).toBe(200);
    expect(backoffDelay(10, opts, () => 0)).toBe(500);
    expect(backoffDelay(10, opts, () => 0.999999)).toBe(1000);
    expect(backoffDelay(10_000, opts, () => 0.5)).toBe(750);
  });

  it('spreads retries with jitter', () => {
    const values = new Set<number>();
    for (let i = 0; i < 50; i++) values.add(backoffDelay(5, { baseMs: 1000, maxMs: 60_000 }));
    expect(values.size).toBeGreaterThan(10);
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(8000);
      expect(v).toBeLessThanOrEqual(16000);
    }
  });
});

describe('WorkQueue', () => {
  it('de-duplicates keys that are waiting', async () => {
    const gate = deferred();
    const seen: string[] = [];
    const q = new WorkQueue({ concurrency: 1 });
    q.start(async (key) => {
      seen.push(key);
      if (key === 'ns/block') await gate.promise;
      return { kind: 'done' };
    });
    q.add('ns/block');
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.depth()).toBe(2);
    gate.resolve();
    await until(() => q.isIdle());
    expect(seen).toEqual(['ns/block', 'ns/a', 'ns/b']);
  });

  it('never runs one key twice at once, and runs it again if it changed meanwhile', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue({ concurrency: 4 });
    q.start(async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) await gate.promise;
      running--;
      return { kind: 'done' };
    });
    q.add('ns/x');
    await until(() => runs === 1);
    q.add('ns/x');
    q.add('ns/x');
    expect(q.depth()).toBe(0);
    gate.resolve();
    await until(() => q.isIdle() && runs === 2);
    expect(maxRunning).toBe(1);
  });

  it('bounds concurrency across keys', async () => {
    const gates = new Map<string, () => void>();
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue({ concurrency: 2 });
    q.start(
      (key) =>
        new Promise<Outcome>((resolve) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          gates.set(key, () => {
            running--;
            resolve({ kind: 'done' });
          });
        }),
    );
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(`ns/${k}`);
    for (let done = 0; done < 5; done++) {
      await until(() => gates.size > 0);
      expect(running).toBeLessThanOrEqual(2);
      const [key, release] = [...gates.entries()][0]!;
      gates.delete(key);
      release();
    }
    await until(() => q.isIdle());
    expect(maxRunning).toBe(2);
  });

  it('retries failures with growing delays and resets after a success', async () => {
    const times: number[] = [];
    let calls = 0;
    const q = new WorkQueue({
      concurrency: 1,
      backoff: { baseMs: 40, maxMs: 10_000 },
      random: () => 0.999,
    });
    q.start(() => {
      times.push(Date.now());
      calls++;
      return Promise.resolve(calls <= 3 ? { kind: 'retry' } : { kind: 'done' });
    });
    q.add('ns/flaky');
    await until(() => calls === 4 && q.isIdle());
    expect(q.failures('ns/flaky')).toBe(0);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Nominal 40, 80, 160 ms; timers never fire early.
    expect(gaps[0]).toBeGreaterThanOrEqual(38);
    expect(gaps[1]).toBeGreaterThanOrEqual(78);
    expect(gaps[2]).toBeGreaterThanOrEqual(158);
  });

  it('counts consecutive failures per key', async () => {
    const q = new WorkQueue({ concurrency: 1, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    let calls = 0;
    q.start(() => {
      calls++;
      return Promise.resolve({ kind: 'retry' });
    });
    q.add('ns/down');
    await until(() => calls === 1 && q.failures('ns/down') === 1);
    // An event for the key runs it now instead of waiting out the backoff.
    q.add('ns/down');
    await until(() => calls === 2 && q.failures('ns/down') === 2);
    await q.shutdown();
    expect(q.isIdle()).toBe(true);
  });

  it('treats a handler that throws as a retriable failure', async () => {
    const q = new WorkQueue({ concurrency: 1, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    q.start(() => Promise.reject(new Error('bug')));
    q.add('ns/bug');
    await until(() => q.failures('ns/bug') === 1);
    await q.shutdown();
  });

  it('shutdown waits for running handlers and then ignores adds', async () => {
    const gate = deferred();
    let finished = false;
    let calls = 0;
    const q = new WorkQueue({ concurrency: 1 });
    q.start(async () => {
      calls++;
      await gate.promise;
      finished = true;
      return { kind: 'requeue', afterMs: 10 };
    });
    q.add('ns/a');
    await until(() => calls === 1);
    const shut = q.shutdown();
    gate.resolve();
    await shut;
    expect(finished).toBe(true);
    q.add('ns/b');
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(1);
  });
});
