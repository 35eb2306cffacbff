import type { ServerConfigInput } from '../../server-image/src/config.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { resourceNames } from './names.js';
import { OPS_PORT, REDIS_PORT, SOCKETIO_PATH, SOCKETIO_PORT } from './ports.js';

/** One node of the Redis Cluster, as the servers dial it. */
export interface RedisNodeAddress {
  host: string;
  port: number;
}

/**
 * The server.json the Socket.IO pods read; secrets never go here (REDIS_PASSWORD env instead).
 * `nodes` are seeds of one Redis Cluster: any of its nodes, the client learns the rest.
 */
export function buildServerConfig(
  cluster: RealtimeCluster,
  nodes: RedisNodeAddress[],
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
    redis: { nodes: nodes.map((a) => ({ host: a.host, port: a.port })) },
    logLevel: 'info',
  };
}

/**
 * Seeds for operator-run shards: every pod of every shard StatefulSet by its stable DNS name
 * (`<sts>-<ordinal>.<headless service>.<ns>.svc`), the names the nodes also announce, so a seed
 * list never goes stale when a pod gets a new IP and any one live pod is enough to start.
 * Without a namespace (render of a bare manifest) the names resolve through the pod's DNS search
 * path. `replicasPerShard` is read when the API has it (issue 12's operator half), else 0.
 */
export function kubernetesRedisNodes(cluster: RealtimeCluster): RedisNodeAddress[] {
  const names = resourceNames(cluster.metadata.name);
  const ns = cluster.metadata.namespace;
  const replicas = (cluster.spec.redis as { replicasPerShard?: number }).replicasPerShard ?? 0;
  const nodes: RedisNodeAddress[] = [];
  for (let i = 0; i < cluster.spec.redis.shards; i++) {
    const sts = names.redisShard(i);
    for (let ordinal = 0; ordinal <= replicas; ordinal++) {
      const pod = `${sts}-${ordinal}.${sts}`;
      nodes.push({ host: ns ? `${pod}.${ns}.svc` : pod, port: REDIS_PORT });
    }
  }
  return nodes;
}
