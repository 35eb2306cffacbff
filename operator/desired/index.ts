import type { RealtimeCluster } from '../api/realtimecluster.js';
import {
  buildGatewayConfigMap,
  buildGatewayDeployment,
  buildGatewayService,
  buildGatewaySyncRole,
  buildGatewaySyncRoleBinding,
  buildGatewaySyncServiceAccount,
} from './gateway.js';
import { resourceNames } from './names.js';
import { buildNetworkPolicies } from './network-policy.js';
import { buildPodDisruptionBudget } from './pdb.js';
import {
  buildRedisConfigMap,
  buildRedisService,
  buildRedisShardPdb,
  buildRedisStatefulSet,
} from './redis.js';
import { buildServerConfigMap, buildServerDeployment, buildServerService } from './server.js';
import { buildServiceAccount } from './service-account.js';
import { buildServerTuning } from './tuning.js';
import type { DesiredState, KubeObject, ObservedFacts } from './types.js';
import { specWarnings } from './warnings.js';
import { clientAuthWarnings as authWarnings } from './client-auth.js';

export type { DesiredState, Endpoint, KubeObject, ObjectMeta, OwnerReference } from './types.js';
export { resourceNames, type ResourceNames } from './names.js';
export {
  componentLabels,
  ownerReferences,
  selectorLabels,
  serverSelector,
  type Component,
} from './labels.js';
export { buildRedisAuthSecret } from './secret.js';
export {
  deriveRedisPassword,
  deriveRedisPasswords,
  REDIS_ACL_RULES,
  REDIS_SECRET_KEYS,
  REDIS_USERS,
  renderRedisAclConf,
  type RedisPasswords,
  type RedisUserRole,
} from './redis-acl.js';
export {
  buildClientAuthSecret,
  CLIENT_AUTH_KEY,
  clientAuthSecretName,
  clientAuthWarnings,
} from './client-auth.js';
export { renderNginxConf, kubernetesNginxRuntime, type NginxRuntime } from './nginx.js';
export { buildServerConfig } from './server-config.js';
export {
  kubernetesRedisPods,
  redisClusterNodes,
  redisNodesPerShard,
  type RedisNodeAddress,
  type RedisPodRef,
} from './redis.js';

/**
 * The shards whose StatefulSets exist: the spec's, plus removed ones that still hold hash slots
 * (they are deleted only once the operator has moved every slot away).
 */
export function redisShardsToRun(cluster: RealtimeCluster, observed: ObservedFacts): number[] {
  const shards = new Set(Array.from({ length: cluster.spec.redis.shards }, (_, i) => i));
  for (const i of observed.retainedShards ?? []) shards.add(i);
  return [...shards].sort((a, b) => a - b);
}

/**
 * Every object the operator owns for this cluster, in apply order: identity and network policy
 * before any pod exists, Redis before the servers that connect to it, servers before the gateway
 * that routes to them. The Redis auth Secret is not here (see buildRedisAuthSecret).
 */
export function buildDesired(cluster: RealtimeCluster, observed: ObservedFacts = {}): DesiredState {
  const spec = cluster.spec;
  const names = resourceNames(cluster.metadata.name);
  const tuning = buildServerTuning(cluster);
  // The gateway sync account exists in every mode, like the servers' one: the operator never
  // deletes ServiceAccounts (garbage collection does), and without its Role it can do nothing.
  const objects: KubeObject[] = [
    buildServiceAccount(cluster),
    buildGatewaySyncServiceAccount(cluster),
  ];

  if (cluster.spec.networkPolicy.enabled) objects.push(...buildNetworkPolicies(cluster));

  if (!spec.redis.external) {
    objects.push(buildRedisConfigMap(cluster));
    for (const i of redisShardsToRun(cluster, observed)) {
      objects.push(
        buildRedisService(cluster, i),
        buildRedisStatefulSet(
          cluster,
          i,
          observed.retainedNodes?.find((r) => r.shard === i)?.nodes,
        ),
        buildRedisShardPdb(cluster, i),
      );
    }
  }

  objects.push(
    buildServerConfigMap(cluster),
    buildServerService(cluster),
    buildServerDeployment(cluster, tuning),
    buildPodDisruptionBudget(cluster, names.server, 'server'),
  );

  if (spec.gateway.mode === 'managed') {
    objects.push(
      buildGatewaySyncRole(cluster),
      buildGatewaySyncRoleBinding(cluster),
      buildGatewayConfigMap(cluster),
      buildGatewayService(cluster),
      buildGatewayDeployment(cluster),
      buildPodDisruptionBudget(cluster, names.gateway, 'gateway'),
    );
  }

  return {
    objects,
    warnings: [...tuning.warnings, ...specWarnings(cluster), ...authWarnings(cluster)],
  };
}
