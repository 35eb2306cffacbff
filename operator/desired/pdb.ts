import type { RealtimeCluster } from '../api/realtimecluster.js';
import { componentLabels, objectMeta, selectorLabels, type Component } from './labels.js';
import type { KubeObject } from './types.js';

/** One pod at a time during node drains: each evicted server sends its clients elsewhere. */
export function buildPodDisruptionBudget(
  cluster: RealtimeCluster,
  name: string,
  component: Component,
): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: objectMeta(cluster, name, componentLabels(cluster, component)),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(cluster, component) },
    },
  };
}
