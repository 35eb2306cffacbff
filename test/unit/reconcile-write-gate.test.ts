// The WriteGate that bounds a leader's writes by its renew deadline (the e2e proof with a frozen
// leader is test/e2e/leader-freeze.test.ts), and the flags that set the lease timings.
import { describe, expect, it } from 'vitest';
import { parseOperatorFlags } from '../../operator/cli/operator.js';
import { WriteGate } from '../../operator/reconcile/write-gate.js';

describe('WriteGate', () => {
  it('allows writes only before the deadline of the last renewal, on the given clock', () => {
    let now = 1000;
    const gate = new WriteGate(false, () => now);
    expect(() => gate.check()).toThrow(
      'Write refused: this process does not hold the leader lease.',
    );
    gate.openUntil(now + 4000);
    expect(() => gate.check()).not.toThrow();
    // Frozen past the deadline: refused the moment it runs again, with no renewal attempt needed.
    now += 4000;
    expect(gate.isOpen).toBe(false);
    expect(() => gate.check()).toThrow('Write refused');
  });

  it('revoke aborts in-flight requests and refuses further writes', () => {
    const gate = new WriteGate(false, () => 0);
    gate.openUntil(10_000);
    const signal = gate.signal;
    gate.revoke('the leader lease was lost');
    expect(signal.aborted).toBe(true);
    expect(() => gate.check()).toThrow('Write refused: the leader lease was lost.');
  });

  it('is always open without leader election', () => {
    const gate = new WriteGate(true, () => Number.MAX_SAFE_INTEGER);
    expect(() => gate.check()).not.toThrow();
  });
});

describe('lease timing flags', () => {
  it('default to client-go-like 15 s / 10 s / 2 s', () => {
    expect(parseOperatorFlags([])).toMatchObject({
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    });
  });

  it('refuse a renew deadline that is not below the lease duration', () => {
    expect(() => parseOperatorFlags(['--lease-duration', '10', '--renew-deadline', '10'])).toThrow(
      '--renew-deadline (10) must be less than --lease-duration (10), or two leaders could write at once.',
    );
    expect(() => parseOperatorFlags(['--renew-deadline', '4', '--retry-period', '4'])).toThrow(
      '--retry-period (4) must be less than --renew-deadline (4), or no renewal fits before the deadline.',
    );
  });
});
