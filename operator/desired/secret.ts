import type { RealtimeCluster } from '../api/realtimecluster.js';
import { componentLabels, objectMeta } from './labels.js';
import { resourceNames } from './names.js';
import { REDIS_SECRET_KEYS, REDIS_USERS, sha256Hex, type RedisPasswords } from './redis-acl.js';
import { EXPORTER_REDIS_ADDRESS, EXPORTER_REDIS_TLS_ADDRESS } from './exporters.js';
import type { KubeObject } from './types.js';

/**
 * Created once by the operator and never read or overwritten, so never in buildDesired. The
 * passwords are derived from the operator key (redis-acl.ts), so the operator can compute them
 * again instead of reading them back. The Redis pods mount only the hashes and the replication
 * password, the server pods only the server password.
 */
export function buildRedisAuthSecret(
  cluster: RealtimeCluster,
  passwords: RedisPasswords,
): KubeObject {
  const data: Record<string, string> = {
    [REDIS_SECRET_KEYS.serverPassword]: passwords.server,
    [REDIS_SECRET_KEYS.replicationPassword]: passwords.replication,
    [REDIS_SECRET_KEYS.exporterPasswordMap]: JSON.stringify({
      [EXPORTER_REDIS_ADDRESS]: passwords.exporter,
      [EXPORTER_REDIS_TLS_ADDRESS]: passwords.exporter,
    }),
  };
  for (const role of Object.keys(REDIS_USERS) as (keyof typeof REDIS_USERS)[]) {
    data[REDIS_SECRET_KEYS.hash(role)] = sha256Hex(passwords[role]);
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).redisAuthSecret,
      componentLabels(cluster, 'redis'),
    ),
    type: 'Opaque',
    stringData: data,
  };
}
