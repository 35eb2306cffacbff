import type { Logger } from 'pino';
import { renderUpstreamBlock, type Balance } from '../desired/nginx.js';
import type { Endpoint } from '../desired/types.js';
import { endpointsFromSlices, type EndpointSliceLike } from '../desired/upstreams.js';
import { LeavingServers } from './leaving.js';
import type { NginxReloader } from './reloader.js';

export interface SyncOptions {
  balance: Balance;
  /** ip-hash only: how long a server that left stays listed as down. */
  leavingGraceMs: number;
  reloader: NginxReloader;
  log: Logger;
  /** Changes arriving within this window make one reload (default 100 ms). */
  debounceMs?: number;
  now?: () => number;
}

/**
 * Turns the server Service's EndpointSlices into nginx's upstream block whenever they change,
 * with the operator's own builder, and reloads nginx. Level-based: every run renders from the
 * whole current list, so a missed or repeated event changes nothing.
 */
export class GatewaySync {
  private readonly leaving: LeavingServers | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly slices: () => readonly EndpointSliceLike[],
    private readonly opts: SyncOptions,
  ) {
    this.leaving = opts.balance === 'ip-hash' ? new LeavingServers(opts.leavingGraceMs) : undefined;
  }

  /** Schedules a render soon; bursts of slice events collapse into one reload. */
  changed(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.syncNow();
    }, this.opts.debounceMs ?? 100);
  }

  /** Renders and applies now (after any run in progress); never rejects. */
  syncNow(): Promise<void> {
    this.running = this.running.then(() => this.once());
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
  }

  /** The endpoints the next render uses. */
  endpoints(now: number): Endpoint[] {
    const current = endpointsFromSlices(this.slices());
    return this.leaving ? this.leaving.withLeaving(current, now) : current;
  }

  private async once(): Promise<void> {
    if (this.stopped) return;
    const now = (this.opts.now ?? Date.now)();
    const endpoints = this.endpoints(now);
    const text = renderUpstreamBlock(this.opts.balance, endpoints);
    try {
      const result = await this.opts.reloader.apply(text);
      this.failures = 0;
      if (result !== 'unchanged') {
        this.opts.log.info(
          {
            result,
            serving: endpoints.filter((e) => e.down !== true).length,
            down: endpoints.filter((e) => e.down === true).length,
          },
          'upstreams updated',
        );
      }
    } catch (err) {
      this.failures += 1;
      this.opts.log.error(
        { err: err instanceof Error ? err.message : String(err), failures: this.failures },
        'upstreams not applied; retrying',
      );
      // Level-based: try the same render again shortly rather than wait for the next event.
      setTimeout(() => this.changed(), Math.min(30_000, 500 * 2 ** this.failures)).unref();
    }
    this.scheduleExpiry(now);
  }

  private scheduleExpiry(now: number): void {
    const at = this.leaving?.nextExpiry();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (at === undefined || this.stopped) return;
    this.expiryTimer = setTimeout(() => this.changed(), Math.max(0, at - now) + 10);
    this.expiryTimer.unref();
  }
}
