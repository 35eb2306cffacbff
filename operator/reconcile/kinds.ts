import { GROUP, KIND, PLURAL, VERSION } from '../api/realtimecluster.js';

export interface KindInfo {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

/**
 * Every kind the operator reads or writes. The chart's RBAC (charts/socketfleet-operator/templates/
 * _rbac-rules.tpl) is written by hand, not generated from this list: test/unit/chart-values.test.ts
 * checks it covers OWNED_KINDS and test/e2e/chart-rbac.test.ts runs the operator under it.
 */
export const KINDS: readonly KindInfo[] = [
  { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, plural: PLURAL, namespaced: true },
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  { apiVersion: 'v1', kind: 'Service', plural: 'services', namespaced: true },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', namespaced: true },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', plural: 'statefulsets', namespaced: true },
  {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    plural: 'poddisruptionbudgets',
    namespaced: true,
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    namespaced: true,
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    namespaced: true,
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    plural: 'roles',
    namespaced: true,
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    plural: 'rolebindings',
    namespaced: true,
  },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true },
  { apiVersion: 'events.k8s.io/v1', kind: 'Event', plural: 'events', namespaced: true },
];

/**
 * Kinds the operator creates for a cluster, caches (list+watch on its own label) and
 * garbage-collects itself when no longer desired. Not Secrets: listing or watching them, even
 * label-selected, needs list/watch on every Secret in scope, so the Redis password Secret is
 * only ever created (see Reconciler.ensureAuthSecret) and garbage-collected by its owner reference.
 */
export const OWNED_KINDS: readonly string[] = [
  'ServiceAccount',
  'ConfigMap',
  'Service',
  'Deployment',
  'StatefulSet',
  'PodDisruptionBudget',
  'NetworkPolicy',
  'Role',
  'RoleBinding',
];

export function kindInfo(apiVersion: string, kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.apiVersion === apiVersion && k.kind === kind);
}

export function requireKindInfo(apiVersion: string, kind: string): KindInfo {
  const info = kindInfo(apiVersion, kind);
  if (!info) {
    throw new Error(
      `The operator does not know the kind ${apiVersion} ${kind}; add it to operator/reconcile/kinds.ts.`,
    );
  }
  return info;
}

/** REST path of a collection (namespace undefined = all namespaces) or, with a name, of one object. */
export function resourcePath(
  info: KindInfo,
  namespace: string | undefined,
  name?: string,
  subresource?: string,
): string {
  const base = info.apiVersion.includes('/')
    ? `/apis/${info.apiVersion}`
    : `/api/${info.apiVersion}`;
  const ns =
    info.namespaced && namespace !== undefined
      ? `/namespaces/${encodeURIComponent(namespace)}`
      : '';
  let path = `${base}${ns}/${info.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) path += `/${subresource}`;
  return path;
}
