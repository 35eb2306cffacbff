import { CLIENT_AUTH_KEY_ENV } from '../../server-image/src/client-auth.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { componentLabels, objectMeta } from './labels.js';
import { resourceNames } from './names.js';
import type { KubeObject } from './types.js';

export const CLIENT_AUTH_KEY = 'jwt-key';

/** The Secret that holds the key, the user's or the one the operator creates. */
export function clientAuthSecretName(cluster: RealtimeCluster): string {
  return cluster.spec.auth.secretName ?? resourceNames(cluster.metadata.name).clientAuthSecret;
}

/** Created once with a random key when the user names no Secret; never overwritten or read. */
export function buildClientAuthSecret(cluster: RealtimeCluster, key: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).clientAuthSecret,
      componentLabels(cluster, 'server'),
    ),
    type: 'Opaque',
    stringData: { [CLIENT_AUTH_KEY]: key },
  };
}

/** The server's key variable, from the Secret: the key never enters a builder or a ConfigMap. */
export function clientAuthEnv(cluster: RealtimeCluster): Record<string, unknown>[] {
  if (cluster.spec.auth.mode !== 'jwt') return [];
  return [
    {
      name: CLIENT_AUTH_KEY_ENV,
      valueFrom: { secretKeyRef: { name: clientAuthSecretName(cluster), key: CLIENT_AUTH_KEY } },
    },
  ];
}

/** Said in a Warning Event whenever the operator applies a cluster with auth.mode none. */
export function clientAuthWarnings(cluster: RealtimeCluster): string[] {
  if (cluster.spec.auth.mode !== 'none') return [];
  return [
    'spec.auth.mode: none lets anyone who can reach the gateway join any room and publish to it; use jwt unless another layer authenticates clients.',
  ];
}
