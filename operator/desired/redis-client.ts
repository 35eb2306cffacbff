import {
  REDIS_PASSWORD_FILE_ENV,
  REDIS_TLS_ENV as SERVER_REDIS_TLS_ENV,
  REDIS_USERNAME_ENV,
} from '../../server-image/src/config.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { resourceNames } from './names.js';
import { REDIS_SECRET_KEYS, REDIS_USERS } from './redis-acl.js';
import { redisTlsServerName } from './redis-tls.js';

/** Where a server pod finds its Redis password (one file from a Secret, readable by it only). */
export const REDIS_AUTH_DIR = '/etc/socketfleet/redis-auth';

/**
 * Where a server pod finds the TLS files: the external cluster's (from the user's Secrets), or
 * the operator-run shards' CA bundle (from spec.redis.tls.caConfigMap).
 */
export const REDIS_TLS_DIR = '/etc/socketfleet/redis-tls';
/** The TLS settings reach the server as file paths and a server name, never key material. */
export const REDIS_TLS_ENV = SERVER_REDIS_TLS_ENV;

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
  const password = (secretName: string, key: string): void => {
    parts.volumes.push({
      name: 'redis-auth',
      secret: { secretName, defaultMode: 0o440, items: [{ key, path: 'password' }] },
    });
    parts.volumeMounts.push({ name: 'redis-auth', mountPath: REDIS_AUTH_DIR, readOnly: true });
    parts.env.push({ name: REDIS_PASSWORD_FILE_ENV, value: `${REDIS_AUTH_DIR}/password` });
  };
  if (!ext) {
    if (r.auth.enabled) {
      parts.env.push({ name: REDIS_USERNAME_ENV, value: REDIS_USERS.server });
      password(
        resourceNames(cluster.metadata.name).redisAuthSecret,
        REDIS_SECRET_KEYS.serverPassword,
      );
    }
    const serverName = redisTlsServerName(cluster);
    if (r.tls && serverName !== undefined) {
      // The CA bundle only: the node key stays in the Redis pods, and no client certificate is
      // asked for (tls-auth-clients optional), so a server pod holds nothing that could pass
      // for a Redis node.
      parts.volumes.push({
        name: 'redis-tls-ca',
        configMap: {
          name: r.tls.caConfigMap.name,
          items: [{ key: r.tls.caConfigMap.key, path: 'ca.crt' }],
        },
      });
      parts.volumeMounts.push({
        name: 'redis-tls-ca',
        mountPath: `${REDIS_TLS_DIR}/ca`,
        readOnly: true,
      });
      parts.env.push(
        { name: REDIS_TLS_ENV.enabled, value: 'true' },
        { name: REDIS_TLS_ENV.caFile, value: `${REDIS_TLS_DIR}/ca/ca.crt` },
        { name: REDIS_TLS_ENV.serverName, value: serverName },
      );
    }
    return parts;
  }
  if (ext.username) parts.env.push({ name: REDIS_USERNAME_ENV, value: ext.username });
  if (ext.passwordSecret) password(ext.passwordSecret.name, ext.passwordSecret.key);
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
