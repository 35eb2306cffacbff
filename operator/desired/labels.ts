import { API_VERSION, KIND, type RealtimeCluster } from '../api/realtimecluster.js';
import type { ObjectMeta, OwnerReference } from './types.js';

export type Component = 'server' | 'redis' | 'gateway';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_SHARD = 'socketfleet.dev/shard';
export const APP_NAME = 'socketfleet';
export const MANAGER = 'socketfleet-operator';

/** The immutable subset used in selectors: never add a label here that may change later. */
export function selectorLabels(
  cluster: RealtimeCluster,
  component: Component,
  shard?: number,
): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: cluster.metadata.name,
    [LABEL_COMPONENT]: component,
  };
  if (shard !== undefined) labels[LABEL_SHARD] = String(shard);
  return labels;
}

export function componentLabels(
  cluster: RealtimeCluster,
  component: Component,
  shard?: number,
): Record<string, string> {
  return { ...selectorLabels(cluster, component, shard), [LABEL_MANAGED_BY]: MANAGER };
}

/** Labels on objects that belong to the whole cluster rather than one component. */
export function clusterLabels(cluster: RealtimeCluster): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: cluster.metadata.name,
    [LABEL_MANAGED_BY]: MANAGER,
  };
}

/** Label selector string of the Socket.IO pods, as the scale subresource wants it in status. */
export function serverSelector(cluster: RealtimeCluster): string {
  return Object.entries(selectorLabels(cluster, 'server'))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function ownerReferences(cluster: RealtimeCluster): OwnerReference[] | undefined {
  const uid = cluster.metadata.uid;
  if (!uid) return undefined;
  return [
    {
      apiVersion: API_VERSION,
      kind: KIND,
      name: cluster.metadata.name,
      uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
}

/** Metadata of an owned object: namespace, labels and owner reference all come from here. */
export function objectMeta(
  cluster: RealtimeCluster,
  name: string,
  labels: Record<string, string>,
  annotations?: Record<string, string>,
): ObjectMeta {
  const meta: ObjectMeta = { name };
  if (cluster.metadata.namespace) meta.namespace = cluster.metadata.namespace;
  meta.labels = labels;
  if (annotations && Object.keys(annotations).length > 0) meta.annotations = annotations;
  const owners = ownerReferences(cluster);
  if (owners) meta.ownerReferences = owners;
  return meta;
}
