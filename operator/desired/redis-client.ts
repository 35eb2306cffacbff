import { REDIS_PASSWORD_ENV } from '../../server-image/src/config.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { redisPasswordEnv } from './secret.js';

/** Where a server pod finds the external cluster's TLS files (mounted from the user's Secrets). */
export const REDIS_TLS_DIR = '/etc/socketfleet/redis-tls';
/**
 * The TLS settings reach the server as environment variables: file paths and a server name,
 * never the key material itself (that stays in the mounted Secret files).
 */
export const REDIS_TLS_ENV = {
  enabled: 'REDIS_TLS',
  caFile: 'REDIS_TLS_CA_FILE',
  certFile: 'REDIS_TLS_CERT_FILE',
  keyFile: 'REDIS_TLS_KEY_FILE',
  serverName: 'REDIS_TLS_SERVER_NAME',
} as const;

export interface RedisClientPodParts {
  env: Record<string, unknown>[];
  volumes: Record<string, unknown>[];
  volumeMounts: Record<string, unknown>[];
}

/**
 * What a server pod needs to reach Redis beyond server.json: the password from the operator's
 * Secret, or for an external cluster from the user's Secret, plus the optional TLS files.
 */
export function redisClientPodParts(cluster: RealtimeCluster): RedisClientPodParts {
  const r = cluster.spec.redis;
  const parts: RedisClientPodParts = { env: [], volumes: [], volumeMounts: [] };
  const ext = r.external;
  if (!ext) {
    if (r.auth.enabled) parts.env.push(redisPasswordEnv(cluster, REDIS_PASSWORD_ENV));
    return parts;
  }
  if (ext.passwordSecret) {
    parts.env.push({
      name: REDIS_PASSWORD_ENV,
      valueFrom: { secretKeyRef: { name: ext.passwordSecret.name, key: ext.passwordSecret.key } },
    });
  }
  const tls = ext.tls;
  if (!tls) return parts;
  parts.env.push({ name: REDIS_TLS_ENV.enabled, value: 'true' });
  if (tls.serverName) parts.env.push({ name: REDIS_TLS_ENV.serverName, value: tls.serverName });
  if (tls.caSecret) {
    parts.volumes.push({
      name: 'redis-tls-ca',
      secret: { secretName: tls.caSecret.name, items: [{ key: tls.caSecret.key, path: 'ca.crt' }] },
    });
    parts.volumeMounts.push({
      name: 'redis-tls-ca',
      mountPath: `${REDIS_TLS_DIR}/ca`,
      readOnly: true,
    });
    parts.env.push({ name: REDIS_TLS_ENV.caFile, value: `${REDIS_TLS_DIR}/ca/ca.crt` });
  }
  if (tls.clientCertSecret) {
    parts.volumes.push({
      name: 'redis-tls-client',
      secret: { secretName: tls.clientCertSecret.name },
    });
    parts.volumeMounts.push({
      name: 'redis-tls-client',
      mountPath: `${REDIS_TLS_DIR}/client`,
      readOnly: true,
    });
    parts.env.push(
      { name: REDIS_TLS_ENV.certFile, value: `${REDIS_TLS_DIR}/client/tls.crt` },
      { name: REDIS_TLS_ENV.keyFile, value: `${REDIS_TLS_DIR}/client/tls.key` },
    );
  }
  return parts;
}
