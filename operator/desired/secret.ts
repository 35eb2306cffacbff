import type { RealtimeCluster } from '../api/realtimecluster.js';
import { componentLabels, objectMeta } from './labels.js';
import { resourceNames } from './names.js';
import type { KubeObject } from './types.js';

export const REDIS_PASSWORD_KEY = 'password';

/** Created once by the operator with a random password and never overwritten, so never in buildDesired. */
export function buildRedisAuthSecret(cluster: RealtimeCluster, password: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).redisAuthSecret,
      componentLabels(cluster, 'redis'),
    ),
    type: 'Opaque',
    stringData: { [REDIS_PASSWORD_KEY]: password },
  };
}

/** An env var read from the auth Secret; the password itself never enters a builder. */
export function redisPasswordEnv(
  cluster: RealtimeCluster,
  envName: string,
): Record<string, unknown> {
  return {
    name: envName,
    valueFrom: {
      secretKeyRef: {
        name: resourceNames(cluster.metadata.name).redisAuthSecret,
        key: REDIS_PASSWORD_KEY,
      },
    },
  };
}
