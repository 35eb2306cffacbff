import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { OperatorError, tagForHttpStatus, toOperatorError } from './errors.js';
import { requireKindInfo, resourcePath, type KindInfo } from './kinds.js';

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

/**
 * A small JSON REST client over the KubeConfig's credentials. The operator talks to the API
 * through this one place so every write is counted and every failure gets an error tag; it also
 * keeps objects as plain JSON (the generated client re-shapes them through its model classes).
 */
export class KubeClient {
  private constructor(
    private readonly kc: KubeConfig,
    private readonly server: URL,
    private readonly agent: http.Agent | undefined,
    private readonly onWrite: WriteRecorder,
  ) {}

  static async create(
    kc: KubeConfig,
    onWrite: WriteRecorder = () => undefined,
  ): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('The kubeconfig has no current cluster; set a current-context.');
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    let agent = opts.agent instanceof http.Agent ? opts.agent : undefined;
    if (!cluster.proxyUrl) {
      // client-node's agent opens a new TLS connection per request; reuse connections instead.
      agent = cluster.server.startsWith('http:')
        ? new http.Agent({ keepAlive: true })
        : new https.Agent({
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
    return new KubeClient(kc, new URL(cluster.server), agent, onWrite);
  }

  /** Closes pooled connections so the process can exit. */
  close(): void {
    this.agent?.destroy();
  }

  async get<T extends AnyObject>(
    info: KindInfo,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', resourcePath(info, namespace, name));
    } catch (err) {
      if (err instanceof OperatorError && err.httpStatus === 404) return undefined;
      throw err;
    }
  }

  async list<T extends AnyObject>(
    info: KindInfo,
    namespace: string | undefined,
    labelSelector?: string,
  ): Promise<ListResult<T>> {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      const query: Record<string, string> = { limit: '500' };
      if (labelSelector) query.labelSelector = labelSelector;
      if (cont) query.continue = cont;
      const page = await this.request<ListResult<T>>('GET', resourcePath(info, namespace), {
        query,
      });
      // List items carry no apiVersion/kind; the informer caches are easier to use with them.
      for (const item of page.items ?? [])
        items.push({ ...item, apiVersion: info.apiVersion, kind: info.kind });
      resourceVersion = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, metadata: resourceVersion !== undefined ? { resourceVersion } : {} };
  }

  /** Server-side apply under the operator's field manager, taking over conflicting fields. */
  async apply<T extends AnyObject>(obj: AnyObject, subresource?: 'status'): Promise<T> {
    const info = requireKindInfo(obj.apiVersion, obj.kind);
    this.onWrite('apply', subresource ? `${obj.kind}/${subresource}` : obj.kind);
    return this.request<T>(
      'PATCH',
      resourcePath(info, obj.metadata.namespace, obj.metadata.name, subresource),
      {
        query: { fieldManager: FIELD_MANAGER, force: 'true' },
        body: obj,
        contentType: 'application/apply-patch+yaml',
      },
    );
  }

  async createObject<T extends AnyObject>(obj: AnyObject): Promise<T> {
    const info = requireKindInfo(obj.apiVersion, obj.kind);
    this.onWrite('create', obj.kind);
    return this.request<T>('POST', resourcePath(info, obj.metadata.namespace), {
      query: { fieldManager: FIELD_MANAGER },
      body: obj,
    });
  }

  /** PUT with the object's resourceVersion: fails with ApiConflict if someone wrote in between. */
  async replace<T extends AnyObject>(obj: AnyObject): Promise<T> {
    const info = requireKindInfo(obj.apiVersion, obj.kind);
    this.onWrite('update', obj.kind);
    return this.request<T>('PUT', resourcePath(info, obj.metadata.namespace, obj.metadata.name), {
      query: { fieldManager: FIELD_MANAGER },
      body: obj,
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
    this.onWrite('delete', info.kind);
    try {
      await this.request('DELETE', resourcePath(info, namespace, name), {
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
    opts: { query?: Record<string, string>; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    const url = new URL(this.server.toString().replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const reqOpts: https.RequestOptions = { headers: {} };
    // Re-applied per request so rotating credentials (projected service account tokens) are picked up.
    await this.kc.applyToHTTPSOptions(reqOpts);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': USER_AGENT,
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
        req.on('error', (err) => reject(toOperatorError(err)));
        req.end(payload);
      },
    );
    if (status >= 200 && status < 300) {
      return (body ? JSON.parse(body) : {}) as T;
    }
    let message = body.trim();
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) message = parsed.message;
    } catch {
      // not a Status object; keep the raw text
    }
    throw new OperatorError(
      tagForHttpStatus(status),
      `${method} ${url.pathname} returned ${status}: ${message}`,
      {
        httpStatus: status,
      },
    );
  }
}
