/** Every name the operator derives from a cluster name, so no builder spells one by hand. */
export interface ResourceNames {
  server: string;
  serverService: string;
  serverConfig: string;
  gateway: string;
  gatewayService: string;
  gatewayConfig: string;
  /** ServiceAccount, Role and RoleBinding of the gateway's sync sidecar (one name for all three). */
  gatewaySync: string;
  redisAuthSecret: string;
  /** The JWT key Secret the operator creates when spec.auth.secretName is unset. */
  clientAuthSecret: string;
  redisConfig: string;
  serviceAccount: string;
  /** NetworkPolicy names, one per component. */
  networkPolicy: { redis: string; server: string; gateway: string };
  /** StatefulSet and headless Service of shard i share this name; its pod is `<name>-0`. */
  redisShard(i: number): string;
}

export function resourceNames(clusterName: string): ResourceNames {
  const n = clusterName;
  return {
    server: `${n}-server`,
    serverService: `${n}-server`,
    serverConfig: `${n}-server-config`,
    gateway: `${n}-gateway`,
    gatewayService: `${n}-gateway`,
    gatewayConfig: `${n}-gateway-nginx`,
    gatewaySync: `${n}-gateway-sync`,
    redisAuthSecret: `${n}-redis-acl`,
    clientAuthSecret: `${n}-client-auth`,
    redisConfig: `${n}-redis-config`,
    serviceAccount: `${n}-socketfleet`,
    networkPolicy: { redis: `${n}-redis`, server: `${n}-server`, gateway: `${n}-gateway` },
    redisShard: (i: number): string => `${n}-redis-${i}`,
  };
}
