import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { OperatorError } from './errors.js';
import type { AnyObject, KubeClient, WriteOptions } from './kube-client.js';
import { requireKindInfo } from './kinds.js';
import { microTime } from './time.js';

const LEASE = requireKindInfo('coordination.k8s.io/v1', 'Lease');

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease extends AnyObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseDurationSeconds?: number;
  /** Give up leadership when renewals have failed for this long (less than the lease duration). */
  renewDeadlineMs?: number;
  /** How often a standby retries and the leader renews. */
  retryPeriodMs?: number;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, the same protocol as client-go's
 * leaderelection: optimistic-concurrency writes, and expiry judged by when *this* process last
 * saw the record change (not by the holder's timestamps), so clock skew between nodes is harmless.
 *
 * Leadership is a deadline, not a flag: each successful renewal opens the client's WriteGate until
 * (start of that renewal + renew deadline), on the monotonic clock. A standby takes over no sooner
 * than a lease duration after it saw our last renewal, and the renew deadline is shorter, so our
 * writes stop before anyone else's can start: even when this process was frozen in between, and
 * whatever requests were in flight (they are aborted when the deadline passes).
 */
export class LeaderElector {
  private readonly duration: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.duration = opts.leaseDurationSeconds ?? 15;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Resolves true once this process holds the Lease, false if the signal aborts first. */
  async acquire(signal: AbortSignal): Promise<boolean> {
    let loggedWaiting = false;
    while (!signal.aborted) {
      const started = performance.now();
      const holder = await this.tryAcquireOrRenew({ leaseAcquire: true }).catch((err: unknown) => {
        this.opts.log.warn(
          { err: errTag(err), detail: errMessage(err) },
          'leader election attempt failed',
        );
        return undefined;
      });
      if (holder === this.opts.identity) {
        this.leading = true;
        this.opts.client.gate.openUntil(started + this.renewDeadlineMs);
        this.opts.log.info(
          { lease: this.leaseRef(), identity: this.opts.identity },
          'became leader',
        );
        return true;
      }
      if (!loggedWaiting && holder) {
        this.opts.log.info(
          { lease: this.leaseRef(), holder },
          'another operator holds the lease; standing by',
        );
        loggedWaiting = true;
      }
      await sleep(this.retryPeriodMs, signal);
    }
    return false;
  }

  /**
   * Renews the Lease every retry period. Leadership ends, and onLost is called once, when another
   * holder shows up or when no renewal succeeded within the renew deadline: a timer fires at the
   * deadline itself, so a renewal request that hangs cannot stretch it (client-go bounds its
   * renew loop the same way), and each renewal request is aborted at the deadline.
   */
  keepRenewing(onLost: () => void): void {
    const gate = this.opts.client.gate;
    const lose = (holder: string | undefined): void => {
      if (!this.leading) return;
      this.leading = false;
      this.clearTimers();
      gate.revoke('the leader lease was lost');
      this.opts.log.error({ lease: this.leaseRef(), holder }, 'lost the leader lease');
      onLost();
    };
    const armWatchdog = (): void => {
      if (this.watchdog) clearTimeout(this.watchdog);
      const left = Math.max(0, gate.deadline - performance.now());
      this.watchdog = setTimeout(() => {
        if (!gate.isOpen) lose(undefined);
        else armWatchdog();
      }, left + 1);
    };
    const tick = async (): Promise<void> => {
      if (!this.leading) return;
      const started = performance.now();
      // A renewal past the deadline is worthless: the lease may be someone else's by then.
      const signal = AbortSignal.timeout(Math.max(1, Math.ceil(gate.deadline - started)));
      const holder = await this.tryAcquireOrRenew({ signal }).catch((err: unknown) => {
        this.opts.log.warn({ err: errTag(err), detail: errMessage(err) }, 'lease renewal failed');
        return undefined;
      });
      if (!this.leading) return;
      if (holder === this.opts.identity) {
        gate.openUntil(started + this.renewDeadlineMs);
        armWatchdog();
      } else if (holder !== undefined || !gate.isOpen) {
        lose(holder);
        return;
      }
      this.renewTimer = setTimeout(() => void tick(), this.retryPeriodMs);
    };
    armWatchdog();
    this.renewTimer = setTimeout(() => void tick(), this.retryPeriodMs);
  }

  private clearTimers(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.renewTimer = undefined;
    this.watchdog = undefined;
  }

  /** Gives the Lease up so a standby takes over at once instead of after the lease duration. */
  async release(): Promise<void> {
    this.clearTimers();
    if (!this.leading) return;
    this.leading = false;
    const { client, namespace, name } = this.opts;
    const lease = await client.get<Lease>(LEASE, namespace, name);
    if (!lease || lease.spec?.holderIdentity !== this.opts.identity) return;
    const now = microTime(new Date());
    await client.replace({
      ...lease,
      spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now },
    });
    this.opts.log.info({ lease: this.leaseRef() }, 'released the leader lease');
  }

  private leaseRef(): string {
    return `${this.opts.namespace}/${this.opts.name}`;
  }

  /** One round of the protocol; returns the holder afterwards (ours on success). */
  private async tryAcquireOrRenew(write: WriteOptions): Promise<string | undefined> {
    const { client, namespace, name, identity } = this.opts;
    const now = new Date();
    const seenAt = performance.now();
    const lease = await client.get<Lease>(LEASE, namespace, name, write.signal);
    if (!lease) {
      try {
        await client.createObject(
          {
            apiVersion: LEASE.apiVersion,
            kind: LEASE.kind,
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.duration,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
          write,
        );
        return identity;
      } catch (err) {
        if (err instanceof OperatorError && err.httpStatus === 409) return undefined;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = seenAt;
    }
    const holder = spec.holderIdentity ?? '';
    const ttlMs = (spec.leaseDurationSeconds ?? this.duration) * 1000;
    if (holder !== '' && holder !== identity && this.observedAt + ttlMs > seenAt) {
      return holder;
    }
    const ours = holder === identity;
    try {
      await client.replace(
        {
          ...lease,
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: this.duration,
            acquireTime: ours && spec.acquireTime ? spec.acquireTime : microTime(now),
            renewTime: microTime(now),
            leaseTransitions: ours
              ? (spec.leaseTransitions ?? 0)
              : (spec.leaseTransitions ?? 0) + 1,
          },
        },
        write,
      );
      return identity;
    } catch (err) {
      if (err instanceof OperatorError && err.httpStatus === 409) return undefined;
      throw err;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function errTag(err: unknown): string {
  return err instanceof OperatorError ? err.tag : 'Internal';
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
