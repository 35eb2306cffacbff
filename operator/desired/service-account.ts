import type { RealtimeCluster } from '../api/realtimecluster.js';
import { clusterLabels, objectMeta } from './labels.js';
import { resourceNames } from './names.js';
import type { KubeObject } from './types.js';

/** No workload talks to the API server, so none gets a token. */
export function buildServiceAccount(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).serviceAccount,
      clusterLabels(cluster),
    ),
    automountServiceAccountToken: false,
  };
}
