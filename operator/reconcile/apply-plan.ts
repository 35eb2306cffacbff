import { createHash } from 'node:crypto';
import type { KubeObject } from '../desired/types.js';
import { FIELD_MANAGER } from './kube-client.js';
import { canonicalJson } from './status.js';

/**
 * Hash of the desired object as last applied. Comparing it with the live object's annotation
 * tells whether an apply would change anything we own, without a write and without parsing
 * managedFields. A hand edit keeps the annotation, so decideApply looks further: at the
 * generation for kinds that have one, at the fields themselves for the others.
 */
export const APPLIED_HASH_ANNOTATION = 'socketfleet.dev/applied-hash';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'socketfleet-operator';
export const INSTANCE_LABEL = 'app.kubernetes.io/instance';

/** Identity of an object inside one namespace: API group, kind and name. */
export function objectKey(obj: {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}): string {
  const slash = obj.apiVersion.lastIndexOf('/');
  const group = slash === -1 ? '' : obj.apiVersion.slice(0, slash);
  return `${group}/${obj.kind}/${obj.metadata.name}`;
}

export function hashObject(obj: unknown): string {
  return createHash('sha256').update(canonicalJson(obj)).digest('hex').slice(0, 32);
}

/**
 * The object exactly as it will be applied: in the cluster's namespace, carrying the labels the
 * operator's watches select on, and stamped with the hash of everything else.
 */
export function prepareForApply(obj: KubeObject, namespace: string, instance: string): KubeObject {
  const annotations = { ...obj.metadata.annotations };
  delete annotations[APPLIED_HASH_ANNOTATION];
  const { annotations: _dropped, ...meta } = obj.metadata;
  void _dropped;
  const prepared: KubeObject = {
    ...obj,
    metadata: {
      ...meta,
      namespace,
      labels: {
        [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
        [INSTANCE_LABEL]: instance,
        ...obj.metadata.labels,
      },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
  };
  const hash = hashObject(prepared);
  return {
    ...prepared,
    metadata: {
      ...prepared.metadata,
      annotations: { ...prepared.metadata.annotations, [APPLIED_HASH_ANNOTATION]: hash },
    },
  };
}

interface LiveMeta {
  metadata?: {
    name?: string;
    annotations?: Record<string, string> | undefined;
    ownerReferences?: { uid?: string }[] | undefined;
    deletionTimestamp?: unknown;
  };
}

/** Whether applying `prepared` (from prepareForApply) could change the live object. */
export function needsApply(prepared: KubeObject, live: LiveMeta | undefined): boolean {
  if (!live?.metadata) return true;
  const want = prepared.metadata.annotations?.[APPLIED_HASH_ANNOTATION];
  return live.metadata.annotations?.[APPLIED_HASH_ANNOTATION] !== want;
}

/** Whether the live object is owned by the cluster with this uid. */
export function ownedBy(live: LiveMeta, ownerUid: string): boolean {
  return (live.metadata?.ownerReferences ?? []).some((r) => r.uid === ownerUid);
}

/** What the operator last applied to an object, remembered per process. */
export interface AppliedMemo {
  hash: string;
  uid: string | undefined;
  generation: number | undefined;
  /** What our apply returned: the object at exactly this version is ours, whatever it holds. */
  resourceVersion?: string | undefined;
}

export type ApplyDecision = 'create' | 'update' | 'correct-drift' | 'skip';

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: unknown;
}

interface LiveObject {
  metadata?: {
    uid?: string | undefined;
    generation?: number | undefined;
    resourceVersion?: string | undefined;
    annotations?: Record<string, string> | undefined;
    managedFields?: ManagedFieldsEntry[] | undefined;
  };
  [field: string]: unknown;
}

/**
 * Whether another field manager has written (Update, on the object or its scale subresource) a
 * field the desired object sets. A hand edit (kubectl scale/edit/patch) of a field we applied moves
 * that field's ownership to the editor, so this finds edits made while no operator was running,
 * when there is no in-memory memo of the generation we produced. The walk is over field names
 * only: inside a list we set (containers, ports, rules) any foreign entry counts, so an extra env
 * var someone added costs one no-op apply after a restart, never a missed edit.
 */
export function foreignEditOfOurFields(
  desired: Record<string, unknown>,
  managedFields: ManagedFieldsEntry[] | undefined,
  ourManager: string,
): boolean {
  return (managedFields ?? []).some(
    (m) => isForeignSpecUpdate(m, ourManager) && overlaps(m.fieldsV1, desired),
  );
}

/**
 * An entry another manager wrote by Update on the object or its scale subresource: the only
 * entries foreignEditOfOurFields looks at (and so the only ones the watch caches keep).
 */
export function isForeignSpecUpdate(m: ManagedFieldsEntry, ourManager: string): boolean {
  return (
    m.manager !== ourManager &&
    m.operation === 'Update' &&
    (m.subresource === undefined || m.subresource === '' || m.subresource === 'scale')
  );
}

function overlaps(fields: unknown, want: unknown): boolean {
  if (fields === null || typeof fields !== 'object') return false;
  if (want === null || typeof want !== 'object' || Array.isArray(want)) return true;
  const w = want as Record<string, unknown>;
  for (const [k, sub] of Object.entries(fields as Record<string, unknown>)) {
    if (!k.startsWith('f:')) continue;
    const name = k.slice(2);
    if (!(name in w) || w[name] === undefined) continue;
    const v = w[name];
    const leaf = sub === null || typeof sub !== 'object' || Object.keys(sub).length === 0;
    if (leaf || v === null || typeof v !== 'object' || Array.isArray(v)) return true;
    if (overlaps(sub, v)) return true;
  }
  return false;
}

/**
 * Whether every field `want` sets has the same value in `have`. A list matches when each wanted
 * element matches some live element: server-side apply merges lists such as a Service's ports by
 * key and keeps entries other managers added, so their presence is not drift we could undo.
 */
export function containsFields(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return Array.isArray(have) && want.every((w) => have.some((h) => containsFields(h, w)));
  }
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
    const live = have as Record<string, unknown>;
    return Object.entries(want).every(([k, v]) => v === undefined || containsFields(live[k], v));
  }
  return have === want;
}

/** Everything of a desired object but its identity and metadata: spec, data and the like. */
function contentOf(obj: KubeObject): Record<string, unknown> {
  const {
    apiVersion: _v,
    kind: _k,
    metadata: _m,
    ...content
  } = obj as KubeObject & Record<string, unknown>;
  return content;
}

/**
 * Whether to apply, from the desired hash, the live object (from the watch cache) and what this
 * process last applied:
 * - a live object with our current hash is skipped, unless someone changed it by hand: for kinds
 *   with a generation (Deployment, StatefulSet, PDB, NetworkPolicy), its generation moved past
 *   the one our apply produced (e.g. our Deployment was scaled), or, when this process has no
 *   memo of that generation (it just started), managedFields show another manager wrote a
 *   field we set (foreignEditOfOurFields); for kinds without one
 *   (ConfigMap, Service, ServiceAccount), a field we set has another value. It is then applied
 *   again to take our fields back;
 * - a live object with another hash is updated, unless we just applied this very hash to this
 *   very object and the cache has not caught up yet (that would be a duplicate write).
 */
export function decideApply(
  prepared: KubeObject,
  live: LiveObject | undefined,
  memo: AppliedMemo | undefined,
  fieldManager = FIELD_MANAGER,
): ApplyDecision {
  if (!live?.metadata) return 'create';
  const hash = prepared.metadata.annotations?.[APPLIED_HASH_ANNOTATION];
  const sameObject = memo !== undefined && memo.uid !== undefined && memo.uid === live.metadata.uid;
  if (live.metadata.annotations?.[APPLIED_HASH_ANNOTATION] === hash) {
    if (live.metadata.generation === undefined) {
      // The very version our apply returned is settled even if the API server normalised a
      // field we set: comparing it again would re-apply forever.
      const ours =
        sameObject &&
        memo.hash === hash &&
        memo.resourceVersion !== undefined &&
        memo.resourceVersion === live.metadata.resourceVersion;
      return ours || containsFields(live, contentOf(prepared)) ? 'skip' : 'correct-drift';
    }
    const known = sameObject && memo.hash === hash && memo.generation !== undefined;
    if (!known) {
      // No memo (a restart, or another replica applied it): the generation we produced is
      // unknown, so ask managedFields whether someone else wrote one of our fields.
      return foreignEditOfOurFields(prepared, live.metadata.managedFields, fieldManager)
        ? 'correct-drift'
        : 'skip';
    }
    return live.metadata.generation > memo.generation! ? 'correct-drift' : 'skip';
  }
  return sameObject && memo.hash === hash ? 'skip' : 'update';
}

/** The memo to keep after a skip: adopt the live object's identity when we know nothing newer. */
export function memoAfterSkip(
  hash: string,
  live: LiveObject,
  memo: AppliedMemo | undefined,
): AppliedMemo | undefined {
  if (live.metadata?.annotations?.[APPLIED_HASH_ANNOTATION] !== hash) return memo;
  if (memo && memo.uid === live.metadata.uid && memo.hash === hash) return memo;
  return { hash, uid: live.metadata.uid, generation: live.metadata.generation };
}
