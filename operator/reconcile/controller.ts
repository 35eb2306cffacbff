import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, KIND } from '../api/realtimecluster.js';
import { Autopilot } from '../autoscale/loop.js';
import { INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './apply-plan.js';
import type { EventRecorder } from './events.js';
import { KindCache } from './informers.js';
import type { AnyObject, KubeClient } from './kube-client.js';
import { OWNED_KINDS, requireKindInfo, KINDS } from './kinds.js';
import type { OperatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { Reconciler, type Caches } from './reconciler.js';

export interface ControllerOptions {
  kc: KubeConfig;
  client: KubeClient;
  /** Namespaces to watch; undefined or empty = all namespaces. */
  namespaces: readonly string[] | undefined;
  concurrency: number;
  metrics: OperatorMetrics;
  events: EventRecorder;
  log: Logger;
  /** Form, heal and reshard each cluster's Redis over the network (off where pods are fake). */
  redisAdmin?: boolean;
  /** Read server metrics to autoscale and detect trouble (default: as redisAdmin, pods must run). */
  autopilot?: boolean;
  /** Roots of the per-cluster Redis passwords, current first (desired/redis-acl.ts). */
  operatorKeys: Buffer[];
}

const OWNED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/** The cluster an owned object belongs to: its controller owner reference, else its instance label. */
export function ownerKey(obj: AnyObject): string | undefined {
  const ns = obj.metadata.namespace;
  if (!ns) return undefined;
  const owner = (obj.metadata.ownerReferences ?? []).find(
    (r) => r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`),
  );
  if (owner) return `${ns}/${owner.name}`;
  const instance = obj.metadata.labels?.[INSTANCE_LABEL];
  return instance ? `${ns}/${instance}` : undefined;
}

/**
 * Wires the watches to the work queue and the queue to the reconciler. Every event, whatever its
 * type, only says "look at this cluster again".
 */
export class Controller {
  readonly caches: Caches;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly all: KindCache[];
  private readonly autopilot: Autopilot | undefined;

  constructor(private readonly opts: ControllerOptions) {
    const { kc, client, namespaces, log } = opts;
    const cache = (kind: string, selector: string | undefined): KindCache => {
      const info = KINDS.find(
        (k) => k.kind === kind && (kind !== 'Event' || k.apiVersion === 'v1'),
      );
      return new KindCache(
        kc,
        client,
        info ?? requireKindInfo('v1', kind),
        namespaces,
        selector,
        log,
      );
    };
    const clusters = cache(KIND, undefined);
    const owned = new Map<string, KindCache>();
    for (const kind of OWNED_KINDS) owned.set(kind, cache(kind, OWNED_SELECTOR));
    // Pods carry their template's labels: the Redis pods' IPs and revisions are read here.
    const pods = cache('Pod', OWNED_SELECTOR);
    this.caches = { clusters, owned, pods };
    this.all = [clusters, ...owned.values(), pods];

    this.queue = new WorkQueue({
      concurrency: opts.concurrency,
      onDepth: (d) => opts.metrics.queueDepth.set(d),
    });
    this.autopilot =
      (opts.autopilot ?? opts.redisAdmin ?? true)
        ? new Autopilot({
            client,
            clusters,
            pods,
            events: opts.events,
            log,
            enqueue: (key) => this.queue.add(key),
          })
        : undefined;
    const autopilot = this.autopilot;
    this.reconciler = new Reconciler({
      client,
      caches: this.caches,
      events: opts.events,
      metrics: opts.metrics,
      log,
      failures: (key) => this.queue.failures(key),
      redisAdmin: opts.redisAdmin ?? true,
      ...(autopilot ? { autopilot: (key: string) => autopilot.observation(key) } : {}),
      operatorKeys: opts.operatorKeys,
    });

    clusters.onEvent((obj) => {
      if (obj.metadata.namespace) this.queue.add(`${obj.metadata.namespace}/${obj.metadata.name}`);
    });
    for (const c of [...owned.values(), pods]) {
      c.onEvent((obj) => {
        const key = ownerKey(obj);
        if (key) this.queue.add(key);
      });
    }
  }

  get synced(): boolean {
    return this.all.every((c) => c.hasSynced);
  }

  /** Starts the watches, waits until every cache has listed once, then starts reconciling. */
  async start(): Promise<void> {
    const started = Date.now();
    await Promise.all(this.all.map((c) => c.start()));
    await Promise.all(this.all.map((c) => c.waitForSync()));
    this.opts.log.info(
      { namespaces: this.opts.namespaces ?? 'all', syncMs: Date.now() - started },
      'caches synced; reconciling',
    );
    this.queue.start((key) => this.reconciler.reconcile(key));
    this.autopilot?.start();
  }

  async stop(): Promise<void> {
    await this.autopilot?.stop();
    await Promise.all(this.all.map((c) => c.stop()));
    await this.queue.shutdown();
  }
}
