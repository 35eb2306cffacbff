import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { OperatorError, tagForHttpStatus, toOperatorError } from './errors.js';
import { requireKindInfo, resourcePath, type KindInfo } from './kinds.js';
import { WriteGate } from './write-gate.js';

export const FIELD_MANAGER = 'socketfleet-operator';
export const USER_AGENT = 'socketfleet-operator/0.1.0';

export type WriteVerb = 'create' | 'apply' | 'update' | 'delete';

/** Called once per write request sent (success or not), for the write counter metric. */
export type WriteRecorder = (verb: WriteVerb, kind: string) => void;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

export interface AnyObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface ListResult<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

const REQUEST_TIMEOUT_MS = 30_000;

/** How a write is sent: `leaseAcquire` marks the one write a non-leader may make (taking the Lease). */
export interface WriteOptions {
  leaseAcquire?: boolean;
  /** Aborts this request (e.g. a Lease renewal that ran past its renew deadline). */
  signal?: AbortSignal;
}

/**
 * A small JSON REST client over the KubeConfig's credentials. The operator talks to the API
 * through this one place so every write is counted and every failure gets an error tag; it also
 * keeps objects as plain JSON (the generated client re-shapes them through its model classes).
 */
export class KubeClient {
  private constructor(
    private readonly kc: KubeConfig,
    private readonly server: URL,
    private agent: http.Agent | undefined,
    private readonly onWrite: WriteRecorder,
    private readonly userAgent: string,
    /** Every write (but a Lease acquisition) passes it immediately before it is sent. */
    readonly gate: WriteGate,
  ) {}

  static async create(
    kc: KubeConfig,
    onWrite: WriteRecorder = () => undefined,
    options: { identity?: string; gate?: WriteGate } = {},
  ): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('The kubeconfig has no current cluster; set a current-context.');
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const agent = cluster.proxyUrl
      ? opts.agent instanceof http.Agent
        ? opts.agent
        : undefined
      : pooledAgent(cluster.server, opts);
    // The identity in the User-Agent tells replicas apart in the API server's audit log.
    const userAgent = options.identity ? `${USER_AGENT} (${options.identity})` : USER_AGENT;
    return new KubeClient(
      kc,
      new URL(cluster.server),
      agent,
      onWrite,
      userAgent,
      options.gate ?? new WriteGate(true),
    );
  }

  /**
   * A rotated cluster CA (the certificate-authority file changed) gets a new connection pool;
   * the old one is closed once its requests had time to finish.
   */
  private followCa(fresh: https.RequestOptions): void {
    if (!(this.agent instanceof https.Agent) || fresh.ca === undefined) return;
    if (sameBytes(this.agent.options.ca, fresh.ca)) return;
    const old = this.agent;
    this.agent = pooledAgent(this.server.toString(), fresh);
    setTimeout(() => old.destroy(), REQUEST_TIMEOUT_MS).unref();
  }

  /** Closes pooled connections so the process can exit. */
  close(): void {
    this.agent?.destroy();
  }

  async get<T extends AnyObject>(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    signal?: AbortSignal,
  ): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', resourcePath(info, namespace, name), {
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof OperatorError && err.httpStatus === 404) return undefined;
      throw err;
    }
  }

  async list<T extends AnyObject>(
    info: KindInfo,
    namespace: string | undefined,
    labelSelector?: string,
    fieldSelector?: string,
    /** Applied to each item as its page arrives, so a large list is never held whole. */
    transform: (item: AnyObject) => AnyObject = (item) => item,
  ): Promise<ListResult<T>> {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      const query: Record<string, string> = { limit: '500' };
      if (labelSelector) query.labelSelector = labelSelector;
      if (fieldSelector) query.fieldSelector = fieldSelector;
      if (cont) query.continue = cont;
      const page = await this.request<ListResult<T>>('GET', resourcePath(info, namespace), {
        query,
      });
      // List items carry no apiVersion/kind; the informer caches are easier to use with them.
      for (const item of page.items ?? [])
        items.push(transform({ ...item, apiVersion: info.apiVersion, kind: info.kind }) as T);
      resourceVersion = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, metadata: resourceVersion !== undefined ? { resourceVersion } : {} };
  }

  /** Server-side apply under the operator's field manager, taking over conflicting fields. */
  async apply<T extends AnyObject>(obj: AnyObject, subresource?: 'status'): Promise<T> {
    const info = requireKindInfo(obj.apiVersion, obj.kind);
    this.gate.check();
    this.onWrite('apply', subresource ? `${obj.kind}/${subresource}` : obj.kind);
    return this.request<T>(
      'PATCH',
      resourcePath(info, obj.metadata.namespace, obj.metadata.name, subresource),
      {
        query: { fieldManager: FIELD_MANAGER, force: 'true' },
        body: obj,
        contentType: 'application/apply-patch+yaml',
        write: {},
      },
    );
  }

  async createObject<T extends AnyObject>(obj: AnyObject, write: WriteOptions = {}): Promise<T> {
    const info = requireKindInfo(obj.apiVersion, obj.kind);
    if (!write.leaseAcquire) this.gate.check();
    this.onWrite('create', obj.kind);
    return this.request<T>('POST', resourcePath(info, obj.metadata.namespace), {
      query: { fieldManager: FIELD_MANAGER },
      body: obj,
      write,
    });
  }

  /** PUT with the object's resourceVersion: fails with ApiConflict if someone wrote in between. */
  async replace<T extends AnyObject>(obj: AnyObject, write: WriteOptions = {}): Promise<T> {
    const info = requireKindInfo(obj.apiVersion, obj.kind);
    if (!write.leaseAcquire) this.gate.check();
    this.onWrite('update', obj.kind);
    return this.request<T>('PUT', resourcePath(info, obj.metadata.namespace, obj.metadata.name), {
      query: { fieldManager: FIELD_MANAGER },
      body: obj,
      write,
    });
  }

  /**
   * Deletes one object; `uid` makes the delete a no-op failure (409) if the name now belongs to a
   * different object. Already gone counts as success.
   */
  async delete(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
    uid?: string,
  ): Promise<void> {
    this.gate.check();
    this.onWrite('delete', info.kind);
    try {
      await this.request('DELETE', resourcePath(info, namespace, name), {
        write: {},
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: 'Background',
          ...(uid ? { preconditions: { uid } } : {}),
        },
      });
    } catch (err) {
      if (err instanceof OperatorError && err.httpStatus === 404) return;
      throw err;
    }
  }

  async request<T>(
    method: string,
    path: string,
    opts: {
      query?: Record<string, string>;
      body?: unknown;
      contentType?: string;
      /** Set for writes: re-checked against the gate at the moment the bytes can go out. */
      write?: WriteOptions;
      signal?: AbortSignal;
    } = {},
  ): Promise<T> {
    const url = new URL(this.server.toString().replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const reqOpts: https.RequestOptions = { headers: {} };
    // Re-applied per request so rotating credentials (projected service account tokens) are picked up.
    await this.kc.applyToHTTPSOptions(reqOpts);
    this.followCa(reqOpts);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.userAgent,
    };
    for (const [k, v] of Object.entries(reqOpts.headers ?? {})) {
      if (typeof v === 'string') headers[k] = v;
    }
    if (reqOpts.auth)
      headers.Authorization = `Basic ${Buffer.from(reqOpts.auth).toString('base64')}`;
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (payload !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const mod = url.protocol === 'http:' ? http : https;
    const agent = this.agent ?? reqOpts.agent;
    const write = opts.write;
    const signals = [this.gate.signal, write?.signal, opts.signal].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const { status, body } = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const req = mod.request(
          url,
          { method, headers, ...(agent ? { agent } : {}), timeout: REQUEST_TIMEOUT_MS },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () =>
          req.destroy(
            Object.assign(new Error(`${method} ${path} timed out`), { code: 'ETIMEDOUT' }),
          ),
        );
        req.on('error', (err) => reject(err instanceof OperatorError ? err : toOperatorError(err)));
        // Leadership lost (or a renewal past its deadline): drop the request wherever it is.
        const onAbort = (e: Event): void => {
          const reason = (e.target as AbortSignal).reason as unknown;
          req.destroy(reason instanceof Error ? reason : this.gate.error());
        };
        for (const s of signals) {
          if (s.aborted) return onAbort({ target: s } as unknown as Event);
          s.addEventListener('abort', onAbort, { once: true });
        }
        req.once('close', () => {
          for (const s of signals) s.removeEventListener('abort', onAbort);
        });
        // Nothing is sent before end(); for a write, end() waits for a connected socket and
        // checks the gate once more right then, so a process frozen while connecting cannot
        // send a write it queued before the freeze.
        const send = (): void => {
          if (write && !write.leaseAcquire && !this.gate.isOpen) {
            req.destroy(this.gate.error());
            return;
          }
          req.end(payload);
        };
        if (!write) return void req.end(payload);
        req.once('socket', (sock) => {
          if (!sock.connecting) return send();
          sock.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', send);
        });
      },
    );
    if (status >= 200 && status < 300) {
      return (body ? JSON.parse(body) : {}) as T;
    }
    let message = body.trim();
    let causes: string[] = [];
    try {
      const parsed = JSON.parse(body) as {
        message?: string;
        details?: { causes?: { reason?: string }[] };
      };
      if (parsed.message) message = parsed.message;
      causes = (parsed.details?.causes ?? []).flatMap((c) => (c.reason ? [c.reason] : []));
    } catch {
      // not a Status object; keep the raw text
    }
    throw new OperatorError(
      tagForHttpStatus(status, causes),
      `${method} ${url.pathname} returned ${status}: ${message}`,
      {
        httpStatus: status,
      },
    );
  }
}

/** A keep-alive pool: client-node's agent opens a new TLS connection per request. */
function pooledAgent(server: string, opts: https.RequestOptions): http.Agent {
  if (server.startsWith('http:')) return new http.Agent({ keepAlive: true });
  return new https.Agent({
    keepAlive: true,
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
    ...(opts.key !== undefined ? { key: opts.key } : {}),
    ...(opts.rejectUnauthorized !== undefined
      ? { rejectUnauthorized: opts.rejectUnauthorized }
      : {}),
    ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
  });
}

function sameBytes(a: unknown, b: unknown): boolean {
  const bytes = (v: unknown): string =>
    Buffer.isBuffer(v)
      ? v.toString('base64')
      : Array.isArray(v)
        ? v.map(bytes).join('|')
        : String(v);
  return bytes(a) === bytes(b);
}
