// Thin helpers over the cluster harness's kubectl for the operator e2e tests.
import type { ObjectMeta } from '../../../operator/reconcile/kube-client.js';
import type { Cluster } from '../../cluster/harness.js';

/** What the API server returns: the operator's own metadata type, with the uid always set. */
export type Meta = ObjectMeta & { uid: string };

export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

export async function getJson<T = Obj>(cluster: Cluster, args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json'])) as T;
}

/** The object, or undefined when it does not exist. */
export async function find(
  cluster: Cluster,
  ns: string,
  kind: string,
  name: string,
): Promise<Obj | undefined> {
  const r = await cluster.kubectl([
    '-n',
    ns,
    'get',
    kind,
    name,
    '-o',
    'json',
    '--ignore-not-found',
  ]);
  if (r.code !== 0) throw new Error(`kubectl get ${kind} ${name}: ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Obj) : undefined;
}

export async function list(
  cluster: Cluster,
  ns: string,
  kind: string,
  selector?: string,
): Promise<Obj[]> {
  const args = ['-n', ns, 'get', kind];
  if (selector) args.push('-l', selector);
  return (await getJson<{ items: Obj[] }>(cluster, args)).items;
}

export function condition(obj: Obj | undefined, type: string): Condition | undefined {
  const conditions = (obj?.status?.conditions ?? []) as Condition[];
  return conditions.find((c) => c.type === type);
}

export async function applyYaml(cluster: Cluster, ns: string, yaml: string): Promise<string> {
  return cluster.kubectlOk(['-n', ns, 'apply', '-f', '-'], yaml);
}
