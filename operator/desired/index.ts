import type { RealtimeCluster } from '../api/realtimecluster.js';
import { buildGatewayConfigMap, buildGatewayDeployment, buildGatewayService } from './gateway.js';
import { resourceNames } from './names.js';
import { buildNetworkPolicies } from './network-policy.js';
import { buildPodDisruptionBudget } from './pdb.js';
import { buildRedisConfigMap, buildRedisService, buildRedisStatefulSet } from './redis.js';
import { buildServerConfigMap, buildServerDeployment, buildServerService } from './server.js';
import { buildServiceAccount } from './service-account.js';
import { buildServerTuning } from './tuning.js';
import type { DesiredState, KubeObject, ObservedFacts } from './types.js';
import { specWarnings } from './warnings.js';
import { clientAuthWarnings as authWarnings } from './client-auth.js';

export type {
  DesiredState,
  Endpoint,
  KubeObject,
  ObjectMeta,
  ObservedFacts,
  OwnerReference,
} from './types.js';
export { resourceNames, type ResourceNames } from './names.js';
export {
  componentLabels,
  ownerReferences,
  selectorLabels,
  serverSelector,
  type Component,
} from './labels.js';
export { buildRedisAuthSecret, REDIS_PASSWORD_KEY } from './secret.js';
export {
  buildClientAuthSecret,
  CLIENT_AUTH_KEY,
  clientAuthSecretName,
  clientAuthWarnings,
} from './client-auth.js';
export { renderNginxConf, kubernetesNginxRuntime, type NginxRuntime } from './nginx.js';
export { buildServerConfig, kubernetesShardAddresses } from './server-config.js';

/**
 * Every object the operator owns for this cluster, in apply order: identity and network policy
 * before any pod exists, Redis before the servers that connect to it, servers before the gateway
 * that routes to them. The Redis auth Secret is not here (see buildRedisAuthSecret).
 */
export function buildDesired(cluster: RealtimeCluster, observed: ObservedFacts): DesiredState {
  const spec = cluster.spec;
  const names = resourceNames(cluster.metadata.name);
  const tuning = buildServerTuning(cluster);
  const objects: KubeObject[] = [buildServiceAccount(cluster)];

  if (cluster.spec.networkPolicy.enabled) objects.push(...buildNetworkPolicies(cluster));

  objects.push(buildRedisConfigMap(cluster));
  for (let i = 0; i < spec.redis.shards; i++) {
    objects.push(buildRedisService(cluster, i), buildRedisStatefulSet(cluster, i));
  }

  objects.push(
    buildServerConfigMap(cluster),
    buildServerService(cluster),
    buildServerDeployment(cluster, tuning),
    buildPodDisruptionBudget(cluster, names.server, 'server'),
  );

  if (spec.gateway.mode === 'managed') {
    objects.push(
      buildGatewayConfigMap(cluster, observed.serverEndpoints),
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
