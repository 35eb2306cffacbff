import { isForeignSpecUpdate, type ManagedFieldsEntry } from './apply-plan.js';
import type { AnyObject, ObjectMeta } from './kube-client.js';

/**
 * What the watch caches keep of each object. The operator holds every owned object and every pod
 * of every cluster in memory, so what it drops on receipt is what decides its memory at hundreds
 * of clusters (the standard controller-runtime move: a transform that strips fields before the
 * cache stores the object).
 *
 * - managedFields: kept only as much as decideApply reads (foreignEditOfOurFields): entries of
 *   other managers written by Update on the object or its scale subresource. The entries that go
 *   are our own Apply and the controllers' status updates, which are most of the bytes.
 * - Pods: only what the Redis planner and the autopilot read: identity, labels, owner, deletion,
 *   revision label, IP and the Ready condition. A pod's spec and the rest of its status are
 *   several kilobytes each, and there are four or more pods per cluster.
 */
export function trimForCache(kind: string, obj: AnyObject, ourManager: string): AnyObject {
  if (kind === 'Pod') return trimPod(obj);
  const meta = obj.metadata as ObjectMeta & { managedFields?: ManagedFieldsEntry[] };
  if (meta.managedFields === undefined) return obj;
  const foreign = meta.managedFields.filter((m) => isForeignSpecUpdate(m, ourManager));
  const { managedFields: _dropped, ...rest } = meta;
  void _dropped;
  const metadata: ObjectMeta & { managedFields?: ManagedFieldsEntry[] } = rest;
  if (foreign.length > 0) metadata.managedFields = foreign;
  return { ...obj, metadata };
}

interface PodLike extends AnyObject {
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type?: string; status?: string }[];
  };
}

function trimPod(obj: AnyObject): AnyObject {
  const pod = obj as PodLike;
  const m = pod.metadata;
  const status = pod.status;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: {
      name: m.name,
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.labels !== undefined ? { labels: m.labels } : {}),
      ...(m.ownerReferences !== undefined ? { ownerReferences: m.ownerReferences } : {}),
      ...(m.deletionTimestamp !== undefined ? { deletionTimestamp: m.deletionTimestamp } : {}),
    },
    ...(status
      ? {
          status: {
            ...(status.phase !== undefined ? { phase: status.phase } : {}),
            ...(status.podIP !== undefined ? { podIP: status.podIP } : {}),
            ...(ready ? { conditions: [{ type: 'Ready', status: ready.status }] } : {}),
          },
        }
      : {}),
  };
}
