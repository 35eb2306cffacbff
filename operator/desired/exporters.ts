import type { RealtimeCluster } from '../api/realtimecluster.js';
import {
  GATEWAY_STATUS_PATH,
  GATEWAY_STATUS_PORT,
  NGINX_EXPORTER_PORT,
  REDIS_EXPORTER_PORT,
  REDIS_PORT,
} from './ports.js';
import { resourceNames } from './names.js';
import { REDIS_SECRET_KEYS, REDIS_USERS } from './redis-acl.js';
import { pullPolicy, restrictedContainerSecurity } from './security.js';

/**
 * Optional Prometheus exporter sidecars (spec.gateway.exporter, spec.redis.exporter). Each reads
 * its neighbour over loopback inside the pod and serves /metrics on a named container port that
 * the chart's PodMonitor selects; nothing else in the pod changes when one is turned on.
 */

/** Container port names: what the chart's PodMonitor scrapes. At most 15 characters. */
export const NGINX_EXPORTER_PORT_NAME = 'nginx-metrics';
export const REDIS_EXPORTER_PORT_NAME = 'redis-metrics';

/**
 * Series the chart's alerts and dashboard may use from each exporter (nginx-prometheus-exporter
 * reading stub_status; redis_exporter reading INFO). The metric-coverage test
 * accepts an exporter series only when it is listed here and the exporter's pods are scraped.
 */
export const NGINX_EXPORTER_METRICS = [
  'nginx_up',
  'nginx_connections_accepted',
  'nginx_connections_active',
  'nginx_connections_handled',
  'nginx_connections_reading',
  'nginx_connections_waiting',
  'nginx_connections_writing',
  'nginx_http_requests_total',
] as const;
export const REDIS_EXPORTER_METRICS = [
  'redis_up',
  'redis_connected_clients',
  'redis_memory_used_bytes',
  'redis_commands_processed_total',
] as const;

/** Exporters are small static binaries; any non-root uid works. 65534 is "nobody". */
const EXPORTER_UID = 65534;

export function gatewayExporterContainers(cluster: RealtimeCluster): Record<string, unknown>[] {
  const e = cluster.spec.gateway.exporter;
  if (!e.enabled) return [];
  return [
    {
      name: 'exporter',
      image: e.image,
      ...pullPolicy(cluster.spec.imagePullPolicy),
      args: [
        `--nginx.scrape-uri=http://127.0.0.1:${GATEWAY_STATUS_PORT}${GATEWAY_STATUS_PATH}`,
        `--web.listen-address=:${NGINX_EXPORTER_PORT}`,
      ],
      ports: [
        { name: NGINX_EXPORTER_PORT_NAME, containerPort: NGINX_EXPORTER_PORT, protocol: 'TCP' },
      ],
      resources: e.resources,
      securityContext: restrictedContainerSecurity(EXPORTER_UID),
    },
  ];
}

/** The address redis_exporter scrapes: its own pod's node, over loopback. */
export const EXPORTER_REDIS_ADDRESS = `redis://127.0.0.1:${REDIS_PORT}`;
/** The same with spec.redis.tls (rediss: TLS); the password map holds both addresses. */
export const EXPORTER_REDIS_TLS_ADDRESS = `rediss://127.0.0.1:${REDIS_PORT}`;
const EXPORTER_AUTH_DIR = '/etc/redis-exporter';

function redisExporterOn(cluster: RealtimeCluster): boolean {
  return cluster.spec.redis.exporter.enabled && cluster.spec.redis.external === undefined;
}

/** The exporter's password, as the file redis_exporter reads (a map from address to password). */
export function redisExporterVolumes(cluster: RealtimeCluster): Record<string, unknown>[] {
  if (!redisExporterOn(cluster) || !cluster.spec.redis.auth.enabled) return [];
  return [
    {
      name: 'exporter-auth',
      secret: {
        secretName: resourceNames(cluster.metadata.name).redisAuthSecret,
        defaultMode: 0o440,
        items: [{ key: REDIS_SECRET_KEYS.exporterPasswordMap, path: 'password-map.json' }],
      },
    },
  ];
}

export function redisExporterContainers(cluster: RealtimeCluster): Record<string, unknown>[] {
  const r = cluster.spec.redis;
  const e = r.exporter;
  if (!redisExporterOn(cluster)) return [];
  // redis_exporter logs in as its own read-only ACL user (redis-acl.ts); its password comes from
  // a Secret file, never an argument or an environment variable that /proc would show.
  const auth = r.auth.enabled;
  // Over TLS the exporter skips the certificate check: it talks to its own pod over loopback,
  // which nothing outside the pod can reach or intercept, and the node certificate names
  // serverName, not 127.0.0.1.
  const tls = r.tls !== undefined;
  return [
    {
      name: 'exporter',
      image: e.image,
      ...pullPolicy(cluster.spec.imagePullPolicy),
      args: [
        `--redis.addr=${tls ? EXPORTER_REDIS_TLS_ADDRESS : EXPORTER_REDIS_ADDRESS}`,
        ...(tls ? ['--skip-tls-verification'] : []),
        `--web.listen-address=:${REDIS_EXPORTER_PORT}`,
        ...(auth ? [`--redis.password-file=${EXPORTER_AUTH_DIR}/password-map.json`] : []),
      ],
      env: auth ? [{ name: 'REDIS_USER', value: REDIS_USERS.exporter }] : [],
      ...(auth
        ? {
            volumeMounts: [{ name: 'exporter-auth', mountPath: EXPORTER_AUTH_DIR, readOnly: true }],
          }
        : {}),
      ports: [
        { name: REDIS_EXPORTER_PORT_NAME, containerPort: REDIS_EXPORTER_PORT, protocol: 'TCP' },
      ],
      resources: e.resources,
      securityContext: restrictedContainerSecurity(EXPORTER_UID),
    },
  ];
}
