import type { ServerConfigInput } from '../../server-image/src/config.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { OPS_PORT, SOCKETIO_PATH, SOCKETIO_PORT } from './ports.js';
import type { RedisNodeAddress } from './redis.js';

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
    // Written only when on, so that clusters without it keep their config hash (no rollout).
    ...(s.connectionStateRecovery.enabled
      ? {
          connectionStateRecovery: {
            enabled: true,
            maxDisconnectionSeconds: s.connectionStateRecovery.maxDisconnectionSeconds,
          },
        }
      : {}),
    redis: { nodes: nodes.map((a) => ({ host: a.host, port: a.port })) },
    logLevel: 'info',
    clientAuth: cluster.spec.auth.mode,
  };
}
