import type { RealtimeCluster } from '../api/realtimecluster.js';
import { REDIS_PORT } from './ports.js';

/**
 * spec.redis.tls for operator-run shards: which files a Redis node reads, the redis.conf lines,
 * and the name every client checks the node certificates against. The key pair comes from the
 * user's kubernetes.io/tls Secret and is mounted into the Redis pods alone; the CA bundle is
 * public and comes from a ConfigMap that the servers and the operator use too.
 */

/** Where a Redis pod mounts tls.crt and tls.key (the Secret). */
export const REDIS_TLS_CERT_DIR = '/etc/redis-tls';
/** Where a Redis pod mounts the CA bundle (the ConfigMap), as ca.crt. */
export const REDIS_TLS_CA_DIR = '/etc/redis-tls-ca';
export const REDIS_TLS_CA_FILE = `${REDIS_TLS_CA_DIR}/ca.crt`;

export interface RedisTlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export const POD_REDIS_TLS_FILES: RedisTlsFiles = {
  certFile: `${REDIS_TLS_CERT_DIR}/tls.crt`,
  keyFile: `${REDIS_TLS_CERT_DIR}/tls.key`,
  caFile: REDIS_TLS_CA_FILE,
};

/**
 * One name for every node, so a shard added later needs no new certificate: the servers and
 * the operator connect to a node's address and check its certificate against this name. The
 * namespace is part of it, so a certificate of a same-named cluster elsewhere does not fit.
 */
export function redisTlsServerName(cluster: RealtimeCluster): string | undefined {
  const tls = cluster.spec.redis.tls;
  if (!tls || cluster.spec.redis.external) return undefined;
  if (tls.serverName !== undefined) return tls.serverName;
  const ns = cluster.metadata.namespace ?? 'default';
  return `${cluster.metadata.name}-redis.${ns}.svc`;
}

/**
 * redis.conf lines for TLS only: no plaintext listener at all, TLS on the cluster bus and for
 * replication. `tls-auth-clients optional`: a client certificate is checked when one is shown
 * but not required, since every login is an ACL password and the operator (which reads no
 * Secret) has no key of its own; the nodes present theirs to one another on the bus.
 */
export function redisTlsConfLines(files: RedisTlsFiles, port = REDIS_PORT): string[] {
  return [
    'port 0',
    `tls-port ${port}`,
    `tls-cert-file ${files.certFile}`,
    `tls-key-file ${files.keyFile}`,
    `tls-ca-cert-file ${files.caFile}`,
    'tls-auth-clients optional',
    'tls-cluster yes',
    'tls-replication yes',
    'tls-protocols "TLSv1.2 TLSv1.3"',
  ];
}

/** The Secret (key pair) and ConfigMap (CA) volumes of a Redis pod, with their mounts. */
export function redisTlsPodParts(cluster: RealtimeCluster): {
  volumes: Record<string, unknown>[];
  volumeMounts: Record<string, unknown>[];
} {
  const tls = cluster.spec.redis.tls;
  if (!tls || cluster.spec.redis.external) return { volumes: [], volumeMounts: [] };
  return {
    volumes: [
      {
        name: 'tls',
        secret: {
          secretName: tls.secretName,
          // Group-readable through fsGroup (Redis's group), never world-readable.
          defaultMode: 0o440,
          items: [
            { key: 'tls.crt', path: 'tls.crt' },
            { key: 'tls.key', path: 'tls.key' },
          ],
        },
      },
      {
        name: 'tls-ca',
        configMap: {
          name: tls.caConfigMap.name,
          items: [{ key: tls.caConfigMap.key, path: 'ca.crt' }],
        },
      },
    ],
    volumeMounts: [
      { name: 'tls', mountPath: REDIS_TLS_CERT_DIR, readOnly: true },
      { name: 'tls-ca', mountPath: REDIS_TLS_CA_DIR, readOnly: true },
    ],
  };
}

/** redis-cli arguments for a probe inside the pod: TLS, trusting the mounted CA. */
export function redisCliTlsArgs(cluster: RealtimeCluster): string {
  return cluster.spec.redis.tls && !cluster.spec.redis.external
    ? ` --tls --cacert ${REDIS_TLS_CA_FILE}`
    : '';
}
