import http from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ReloadOutcomes } from './reloader.js';

/** What the operator reads from GET /rejection while the gauge is 1 (JSON). */
export interface RejectionReport {
  /** nginx's message (or the sidecar's, when nginx said nothing). */
  message: string;
  /** RFC 3339 time of the first refusal in a row. */
  since: string;
  /** Refusals in a row since the last successful reload. */
  count: number;
}

export const REJECTION_PATH = '/rejection';

/**
 * The sidecar's record of nginx reloads, for Prometheus (GET /metrics) and the operator (GET
 * /metrics, then /rejection for nginx's words). The message stays out of the labels: a label per
 * distinct error would make a new series for every typo.
 */
export class ReloadStatus implements ReloadOutcomes {
  readonly registry = new Registry();
  private readonly rejectedGauge: Gauge;
  private readonly reloads: Counter;
  private readonly failures: Counter;
  private current: RejectionReport | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.rejectedGauge = new Gauge({
      name: 'socketfleet_gateway_config_rejected',
      help: '1 while nginx runs a previous configuration because it refused the last one the sidecar gave it (see GET /rejection for its message); 0 after a reload succeeds.',
      registers: [this.registry],
    });
    this.reloads = new Counter({
      name: 'socketfleet_gateway_reloads_total',
      help: 'nginx reloads that started new workers on the new configuration.',
      registers: [this.registry],
    });
    this.failures = new Counter({
      name: 'socketfleet_gateway_reload_failures_total',
      help: 'nginx reloads refused by nginx (or that started no new workers in time).',
      registers: [this.registry],
    });
    this.rejectedGauge.set(0);
  }

  reloaded(): void {
    this.reloads.inc();
    this.rejectedGauge.set(0);
    this.current = undefined;
  }

  rejected(message: string): void {
    this.failures.inc();
    this.rejectedGauge.set(1);
    this.current = {
      message,
      since: this.current?.since ?? new Date(this.now()).toISOString(),
      count: (this.current?.count ?? 0) + 1,
    };
  }

  rejection(): RejectionReport | undefined {
    return this.current;
  }

  /**
   * Serves /metrics and /rejection on every address of the pod (the operator and Prometheus);
   * without `host`, Node's default: IPv6 and IPv4 where the pod has IPv6, else IPv4.
   */
  async listen(port: number, host?: string): Promise<http.Server> {
    const server = http.createServer((req, res) => {
      void this.answer(req.url ?? '/', req.method ?? 'GET', res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  private async answer(url: string, method: string, res: http.ServerResponse): Promise<void> {
    const path = url.split('?')[0];
    if (method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/metrics') {
      const body = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
    } else if (path === REJECTION_PATH) {
      const r = this.current;
      if (r === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(r));
    } else {
      res.writeHead(404).end();
    }
  }
}
