import type { ServerConfigInput } from '../../server-image/src/config.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { resourceNames } from './names.js';
import { OPS_PORT, REDIS_PORT, SOCKETIO_PATH, SOCKETIO_PORT } from './ports.js';

export interface ShardAddress {
  host: string;
  port: number;
}

/** The server.json the Socket.IO pods read; secrets never go here (REDIS_PASSWORD env instead). */
export function buildServerConfig(
  cluster: RealtimeCluster,
  shards: ShardAddress[],
): ServerConfigInput {
  const s = cluster.spec.socketio;
  return {
    port: SOCKETIO_PORT,
    opsPort: OPS_PORT,
    path: SOCKETIO_PATH,
    parser: s.parser,
    pingIntervalMs: s.pingIntervalMs,
    pingTimeoutMs: s.pingTimeoutMs,
    maxPayloadBytes: s.maxPayloadBytes,
    transports: [...s.transports],
    corsOrigins: [...s.corsOrigins],
    eventsPerSecond: s.eventsPerSecond,
    drainSeconds: s.drainSeconds,
    redis: { shards: shards.map((a) => ({ host: a.host, port: a.port })) },
    logLevel: 'info',
    clientAuth: cluster.spec.auth.mode,
  };
}

/**
 * In-cluster addresses of the shards, in ring order. Without a namespace (render of a bare
 * manifest) the short Service name resolves through the pod's DNS search path.
 */
export function kubernetesShardAddresses(cluster: RealtimeCluster): ShardAddress[] {
  const names = resourceNames(cluster.metadata.name);
  const ns = cluster.metadata.namespace;
  return Array.from({ length: cluster.spec.redis.shards }, (_, i) => ({
    host: ns ? `${names.redisShard(i)}.${ns}.svc` : names.redisShard(i),
    port: REDIS_PORT,
  }));
}
