import { ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { backoffDelay } from './backoff.js';
import { OperatorError, tagForHttpStatus, type ErrorTag } from './errors.js';
import { trimForCache } from './cache-trim.js';
import { FIELD_MANAGER, type AnyObject, type KubeClient } from './kube-client.js';
import { resourcePath, type KindInfo } from './kinds.js';

type Callback = (obj: AnyObject) => void;
type Trim = (obj: AnyObject) => AnyObject;

/** client-node's watch, with every object trimmed (cache-trim.ts) before the cache stores it. */
class TrimmingWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly trim: Trim,
  ) {
    super(kc);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      queryParams,
      (phase, obj: unknown, watchObj) => {
        const isObject =
          phase !== 'ERROR' && phase !== 'BOOKMARK' && obj !== null && typeof obj === 'object';
        callback(phase, isObject ? this.trim(obj as AnyObject) : obj, watchObj);
      },
      done,
    );
  }
}

/**
 * A list+watch cache of one kind in one namespace (or all namespaces). client-node's ListWatch
 * re-lists on 410 Gone and re-watches when the server closes a watch, but gives up on any
 * other error; this wrapper restarts it with backoff so a dropped connection or an API server
 * restart heals by itself.
 */
export class KindInformer {
  private readonly informer: ListWatch<KubernetesObject>;
  private readonly callbacks: Callback[] = [];
  private failures = 0;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private syncedResolve: (() => void) | undefined;
  readonly synced: Promise<void>;
  hasSynced = false;

  constructor(
    kc: KubeConfig,
    client: KubeClient,
    readonly info: KindInfo,
    readonly namespace: string | undefined,
    readonly labelSelector: string | undefined,
    private readonly log: Logger,
  ) {
    this.synced = new Promise((resolve) => (this.syncedResolve = resolve));
    const trim: Trim = (obj) => trimForCache(info.kind, obj, FIELD_MANAGER);
    const listFn = async (): Promise<{
      items: KubernetesObject[];
      metadata: { resourceVersion?: string };
    }> => {
      const list = await client.list<AnyObject>(info, namespace, labelSelector, undefined, trim);
      // ListWatch fills its cache synchronously after this promise settles; setImmediate runs later.
      setImmediate(() => this.markSynced());
      return list as unknown as {
        items: KubernetesObject[];
        metadata: { resourceVersion?: string };
      };
    };
    this.informer = new ListWatch<KubernetesObject>(
      resourcePath(info, namespace),
      new TrimmingWatch(kc, trim),
      listFn,
      false,
      labelSelector,
    );
    const emit = (obj: KubernetesObject): void => {
      const withType = { apiVersion: info.apiVersion, kind: info.kind, ...obj } as AnyObject;
      for (const cb of this.callbacks) cb(withType);
    };
    this.informer.on('add', emit);
    this.informer.on('update', emit);
    this.informer.on('delete', emit);
    this.informer.on('error', (err: unknown) => this.scheduleRestart(err));
  }

  onEvent(cb: Callback): void {
    this.callbacks.push(cb);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
    if (!this.restartTimer) this.failures = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.informer.stop();
  }

  get(name: string, namespace?: string): AnyObject | undefined {
    return this.informer.get(name, namespace) as AnyObject | undefined;
  }

  list(namespace?: string): AnyObject[] {
    return this.informer.list(namespace) as unknown as AnyObject[];
  }

  private markSynced(): void {
    if (this.hasSynced) return;
    this.hasSynced = true;
    this.syncedResolve?.();
  }

  private scheduleRestart(err: unknown): void {
    if (this.stopped || this.restartTimer) return;
    this.failures += 1;
    const delay = backoffDelay(this.failures, { baseMs: 500, maxMs: 30_000 });
    this.log.warn(
      {
        err: watchErrorTag(err),
        kind: this.info.kind,
        namespace: this.namespace ?? '*',
        detail: err instanceof Error ? err.message : String(err),
        retryInMs: delay,
      },
      'watch failed; restarting it',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.start().catch((e: unknown) => this.scheduleRestart(e));
    }, delay);
  }
}

/** The informers of one kind across the namespaces the operator watches. */
export class KindCache {
  readonly informers: KindInformer[];

  constructor(
    kc: KubeConfig,
    client: KubeClient,
    readonly info: KindInfo,
    namespaces: readonly string[] | undefined,
    labelSelector: string | undefined,
    log: Logger,
  ) {
    const scopes: (string | undefined)[] =
      namespaces && namespaces.length > 0 ? [...namespaces] : [undefined];
    this.informers = scopes.map((ns) => new KindInformer(kc, client, info, ns, labelSelector, log));
  }

  onEvent(cb: Callback): void {
    for (const i of this.informers) i.onEvent(cb);
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.synced));
  }

  get hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced);
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private informerFor(namespace: string): KindInformer | undefined {
    return this.informers.find((i) => i.namespace === undefined || i.namespace === namespace);
  }

  get(namespace: string, name: string): AnyObject | undefined {
    return this.informerFor(namespace)?.get(name, namespace);
  }

  list(namespace: string): AnyObject[] {
    return this.informerFor(namespace)?.list(namespace) ?? [];
  }

  listAll(): AnyObject[] {
    return this.informers.flatMap((i) => i.list());
  }
}

/** The tag of a list or watch failure: the HTTP status when there is one, else a network blip. */
function watchErrorTag(err: unknown): ErrorTag {
  if (err instanceof OperatorError) return err.tag;
  const status = (err as { statusCode?: unknown; code?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? tagForHttpStatus(status) : 'ApiTransient';
}
