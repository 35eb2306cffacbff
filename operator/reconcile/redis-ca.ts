import type { KubeClient } from './kube-client.js';
import { kindInfo } from './kinds.js';

/** The CA bundle of spec.redis.tls.caConfigMap, or why the operator has none. */
export type CaBundle = { ok: true; pem: string } | { ok: false; problem: string };

/** Re-read at most this often: a rotated CA bundle is picked up within this window. */
const TTL_MS = 30_000;

/**
 * Reads the public CA bundle that the operator checks Redis node certificates against. A
 * ConfigMap, never a Secret, and read through `list` with a name field selector: the operator
 * already lists ConfigMaps (its own are cached), so spec.redis.tls needs no new permission.
 * The operator-owned ConfigMap cache is label-selected and never holds the user's ConfigMap.
 */
export class RedisCaReader {
  private readonly cache = new Map<string, { at: number; bundle: CaBundle }>();

  constructor(
    private readonly client: Pick<KubeClient, 'list'>,
    private readonly now: () => number = Date.now,
  ) {}

  async read(namespace: string, name: string, key: string): Promise<CaBundle> {
    const id = `${namespace}/${name}/${key}`;
    const hit = this.cache.get(id);
    if (hit && this.now() - hit.at < TTL_MS) return hit.bundle;
    const bundle = await this.fetch(namespace, name, key);
    this.cache.set(id, { at: this.now(), bundle });
    return bundle;
  }

  private async fetch(namespace: string, name: string, key: string): Promise<CaBundle> {
    const where = `spec.redis.tls.caConfigMap: ConfigMap ${namespace}/${name}`;
    let items: { data?: Record<string, string> }[];
    try {
      const list = await this.client.list<{
        apiVersion: string;
        kind: string;
        metadata: { name: string };
        data?: Record<string, string>;
      }>(kindInfo('v1', 'ConfigMap')!, namespace, undefined, `metadata.name=${name}`);
      items = list.items;
    } catch (err) {
      return {
        ok: false,
        problem: `${where} could not be read (${err instanceof Error ? err.message : String(err)}); the operator cannot verify the Redis nodes without it.`,
      };
    }
    const pem = items[0]?.data?.[key];
    if (items.length === 0) {
      return {
        ok: false,
        problem: `${where} does not exist; the operator cannot verify the Redis nodes without it.`,
      };
    }
    if (pem === undefined || !pem.includes('-----BEGIN CERTIFICATE-----')) {
      return {
        ok: false,
        problem: `${where} has no PEM certificate under key ${key}; the operator cannot verify the Redis nodes without it.`,
      };
    }
    return { ok: true, pem };
  }

  forget(namespace: string): void {
    for (const id of this.cache.keys()) if (id.startsWith(`${namespace}/`)) this.cache.delete(id);
  }
}
