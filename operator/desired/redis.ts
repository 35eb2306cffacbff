import type { RealtimeCluster } from '../api/realtimecluster.js';
import { contentHash } from './hash.js';
import { componentLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import { REDIS_PORT } from './ports.js';
import { redisPasswordEnv } from './secret.js';
import { podSecurity, pullPolicy, REDIS_UID, restrictedContainerSecurity } from './security.js';
import type { KubeObject } from './types.js';

export const REDIS_CONF_KEY = 'redis.conf';
const CONF_DIR = '/etc/redis';

/**
 * Shared by every shard. Pub/sub keeps nothing on disk, so persistence is off unless asked;
 * the password is not here but passed on the command line from the Secret.
 */
export function renderRedisConf(cluster: RealtimeCluster): string {
  const r = cluster.spec.redis;
  const lines = [
    '# Rendered by socketfleet; the password comes from the Secret at start-up.',
    'bind * -::*',
    'protected-mode no',
    `port ${REDIS_PORT}`,
    'tcp-backlog 1024',
    'tcp-keepalive 60',
    'timeout 0',
    `maxclients ${r.maxClients}`,
    'save ""',
    // A Socket.IO server that falls behind on broadcasts gets disconnected and resubscribes
    // rather than growing Redis memory without bound.
    'client-output-buffer-limit pubsub 256mb 64mb 60',
  ];
  if (r.persistence.enabled) lines.push('appendonly yes', 'appendfsync everysec');
  else lines.push('appendonly no');
  return lines.join('\n') + '\n';
}

export function buildRedisConfigMap(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).redisConfig,
      componentLabels(cluster, 'redis'),
    ),
    data: { [REDIS_CONF_KEY]: renderRedisConf(cluster) },
  };
}

/** Headless, so each shard address resolves straight to its single pod. */
export function buildRedisService(cluster: RealtimeCluster, shard: number): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).redisShard(shard),
      componentLabels(cluster, 'redis', shard),
    ),
    spec: {
      clusterIP: 'None',
      selector: selectorLabels(cluster, 'redis', shard),
      ports: [{ name: 'redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' }],
    },
  };
}

export function buildRedisStatefulSet(cluster: RealtimeCluster, shard: number): KubeObject {
  const r = cluster.spec.redis;
  const names = resourceNames(cluster.metadata.name);
  const name = names.redisShard(shard);
  const auth = r.auth.enabled;
  const start = auth
    ? `exec redis-server ${CONF_DIR}/${REDIS_CONF_KEY} --requirepass "$REDIS_PASSWORD"`
    : `exec redis-server ${CONF_DIR}/${REDIS_CONF_KEY}`;
  const env = auth
    ? [redisPasswordEnv(cluster, 'REDIS_PASSWORD'), redisPasswordEnv(cluster, 'REDISCLI_AUTH')]
    : [];
  const volumes: Record<string, unknown>[] = [
    { name: 'config', configMap: { name: names.redisConfig } },
    { name: 'tmp', emptyDir: {} },
  ];
  if (!r.persistence.enabled) volumes.push({ name: 'data', emptyDir: {} });

  const spec: Record<string, unknown> = {
    replicas: 1,
    serviceName: name,
    podManagementPolicy: 'Parallel',
    selector: { matchLabels: selectorLabels(cluster, 'redis', shard) },
    template: {
      metadata: {
        labels: componentLabels(cluster, 'redis', shard),
        annotations: { 'socketfleet.dev/config-hash': contentHash(renderRedisConf(cluster)) },
      },
      spec: {
        serviceAccountName: names.serviceAccount,
        automountServiceAccountToken: false,
        securityContext: podSecurity(REDIS_UID),
        terminationGracePeriodSeconds: 10,
        containers: [
          {
            name: 'redis',
            image: r.image,
            ...pullPolicy(cluster.spec.imagePullPolicy),
            // Redis keeps its files in the working directory; the conf stays path-free so the
            // same file runs outside Kubernetes too.
            workingDir: '/data',
            command: ['sh', '-c', start],
            env,
            ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
            readinessProbe: {
              exec: { command: ['sh', '-c', 'redis-cli -p 6379 ping | grep -q PONG'] },
              periodSeconds: 5,
              timeoutSeconds: 3,
            },
            livenessProbe: {
              tcpSocket: { port: 'redis' },
              initialDelaySeconds: 10,
              periodSeconds: 10,
            },
            resources: r.resources,
            securityContext: restrictedContainerSecurity(REDIS_UID),
            volumeMounts: [
              { name: 'config', mountPath: CONF_DIR, readOnly: true },
              { name: 'data', mountPath: '/data' },
              { name: 'tmp', mountPath: '/tmp' },
            ],
          },
        ],
        volumes,
      },
    },
  };
  if (r.persistence.enabled) {
    const pvcSpec: Record<string, unknown> = {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: r.persistence.size } },
    };
    if (r.persistence.storageClassName) pvcSpec.storageClassName = r.persistence.storageClassName;
    spec.volumeClaimTemplates = [{ metadata: { name: 'data' }, spec: pvcSpec }];
    spec.persistentVolumeClaimRetentionPolicy = { ...r.persistence.retentionPolicy };
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: objectMeta(cluster, name, componentLabels(cluster, 'redis', shard)),
    spec,
  };
}
