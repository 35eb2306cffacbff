import type { RealtimeCluster } from '../api/realtimecluster.js';
import { selectorLabels, type Component } from './labels.js';

export const HOSTNAME_TOPOLOGY_KEY = 'kubernetes.io/hostname';

/**
 * A soft preference for one pod per node, used when the user gives no spread of their own.
 * ScheduleAnyway: never leaves a pod Pending on a cluster with fewer nodes than replicas.
 * No zone constraint: with explicit constraints the scheduler ignores, for all of them, every
 * node that lacks one of the topology labels, so on clusters without zone labels a zone
 * constraint would switch off the node spread too. pod-template-hash counts only the pods of the
 * current ReplicaSet, so a rollout spreads the new pods instead of stacking them where old
 * ones are about to leave.
 */
export function defaultTopologySpread(
  cluster: RealtimeCluster,
  component: Component,
): Record<string, unknown>[] {
  return [
    {
      maxSkew: 1,
      topologyKey: HOSTNAME_TOPOLOGY_KEY,
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: selectorLabels(cluster, component) },
      matchLabelKeys: ['pod-template-hash'],
    },
  ];
}
