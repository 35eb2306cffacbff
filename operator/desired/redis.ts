import type { RealtimeCluster } from '../api/realtimecluster.js';
import { redisExporterContainers, redisExporterVolumes } from './exporters.js';
import { contentHash } from './hash.js';
import { componentLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import { REDIS_PORT } from './ports.js';
import { REDIS_SECRET_KEYS, REDIS_USERS, redisAuthStartScript } from './redis-acl.js';
import {
  POD_REDIS_TLS_FILES,
  redisCliTlsArgs,
  redisTlsConfLines,
  redisTlsPodParts,
} from './redis-tls.js';
import { podSecurity, pullPolicy, REDIS_UID, restrictedContainerSecurity } from './security.js';
import { HOSTNAME_TOPOLOGY_KEY } from './spread.js';
import type { KubeObject } from './types.js';

export const REDIS_CONF_KEY = 'redis.conf';
export const REDIS_START_KEY = 'start.sh';
const CONF_DIR = '/etc/redis';
/** The mounted Secret files: password hashes and the replication password, nothing else. */
const AUTH_DIR = '/etc/redis-auth';
/** Memory-backed emptyDir where start.sh writes the ACL users; only Redis's user can read it. */
const RUN_DIR = '/run/redis';
export const REDIS_AUTH_CONF = `${RUN_DIR}/auth.conf`;
/** Redis Cluster's node-to-node bus: the client port + 10000, fixed by Redis. */
export const REDIS_BUS_PORT = REDIS_PORT + 10000;

/**
 * Shared by every node of every shard. Pub/sub keeps nothing on disk, so persistence is off
 * unless asked. The ACL users are not here but in a file each pod writes at start-up from the
 * mounted Secret (start.sh), and the announced host name is passed on the command line, so one
 * file serves every pod.
 */
export function renderRedisConf(cluster: RealtimeCluster): string {
  const r = cluster.spec.redis;
  const lines = [
    '# Rendered by socketfleet; the password and host name come from the pod at start-up.',
    'bind * -::*',
    'protected-mode no',
    // With TLS there is no plaintext listener at all (redis-tls.ts).
    ...(r.tls ? redisTlsConfLines(POD_REDIS_TLS_FILES) : [`port ${REDIS_PORT}`]),
    'tcp-backlog 1024',
    'tcp-keepalive 60',
    'timeout 0',
    `maxclients ${r.maxClients}`,
    'save ""',
    // A Socket.IO server that falls behind on broadcasts gets disconnected and resubscribes
    // rather than growing Redis memory without bound.
    'client-output-buffer-limit pubsub 256mb 64mb 60',
    'cluster-enabled yes',
    // Relative to the working directory (/data): the node identity survives a container
    // restart, and with persistence a pod restart too.
    'cluster-config-file nodes.conf',
    `cluster-node-timeout ${r.nodeTimeoutMs}`,
    // Clients are redirected by name, so a pod that comes back on a new IP stays reachable.
    'cluster-preferred-endpoint-type hostname',
    // One shard without a master silences only its own slots; the rest keep serving.
    'cluster-require-full-coverage no',
    'cluster-allow-pubsubshard-when-down yes',
    // The operator places replicas: each stays in its shard's StatefulSet, next to its master's
    // slots, instead of Redis moving it to another shard.
    'cluster-allow-replica-migration no',
    // Pub/sub holds no data that can be stale, so any replica may take over, however long
    // its link to the master was down.
    'cluster-replica-validity-factor 0',
    // A replica that (re)joins syncs at once instead of waiting 5 s for others to batch with:
    // the rolling restart waits for each replica to be in sync before the next pod goes.
    'repl-diskless-sync-delay 0',
  ];
  if (r.persistence.enabled) lines.push('appendonly yes', 'appendfsync everysec');
  else lines.push('appendonly no');
  // The default user off, one user per party, and the replicas' masterauth (redis-acl.ts).
  if (r.auth.enabled) lines.push(`include ${REDIS_AUTH_CONF}`);
  return lines.join('\n') + '\n';
}

/**
 * The container's entrypoint: write the ACL file (with auth), then exec redis-server announcing
 * the pod's stable DNS name. REDIS_SERVICE is the shard's headless Service.
 */
export function renderRedisStartScript(cluster: RealtimeCluster): string {
  const lines = ['#!/bin/sh', '# Rendered by socketfleet.', 'set -eu'];
  if (cluster.spec.redis.auth.enabled)
    lines.push(...redisAuthStartScript(AUTH_DIR, REDIS_AUTH_CONF));
  lines.push(
    `exec redis-server ${CONF_DIR}/${REDIS_CONF_KEY} --cluster-announce-hostname "$POD_NAME.$REDIS_SERVICE.$POD_NAMESPACE.svc"`,
  );
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
    data: {
      [REDIS_CONF_KEY]: renderRedisConf(cluster),
      [REDIS_START_KEY]: renderRedisStartScript(cluster),
    },
  };
}

/**
 * Headless, so each pod has a stable DNS name (`<pod>.<service>.<namespace>.svc`) that the nodes
 * announce. Not-ready pods are published too: a node must be reachable by name while the
 * operator joins it to the cluster, before anything else would call it ready.
 */
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
      publishNotReadyAddresses: true,
      selector: selectorLabels(cluster, 'redis', shard),
      ports: [
        { name: 'redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' },
        { name: 'bus', port: REDIS_BUS_PORT, targetPort: 'bus', protocol: 'TCP' },
      ],
    },
  };
}

/** Nodes per shard: the master and its replicas. */
export function redisNodesPerShard(cluster: RealtimeCluster): number {
  return 1 + cluster.spec.redis.replicasPerShard;
}

/**
 * One shard: a master and its replicas. OnDelete, because which pod is the master changes with
 * failovers: the operator rolls a template change itself, replicas first, then fails over onto
 * an updated replica before the old master goes (see planner.ts), one pod of one shard at a time.
 */
export function buildRedisStatefulSet(
  cluster: RealtimeCluster,
  shard: number,
  /** Pods to keep while one beyond the spec's count is still the master (planner's retainedNodes). */
  retainedNodes = 0,
): KubeObject {
  const r = cluster.spec.redis;
  const names = resourceNames(cluster.metadata.name);
  const name = names.redisShard(shard);
  const auth = r.auth.enabled;
  const env: Record<string, unknown>[] = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'REDIS_SERVICE', value: name },
  ];
  const volumes: Record<string, unknown>[] = [
    { name: 'config', configMap: { name: names.redisConfig } },
    { name: 'tmp', emptyDir: {} },
  ];
  const volumeMounts: Record<string, unknown>[] = [
    { name: 'config', mountPath: CONF_DIR, readOnly: true },
    { name: 'data', mountPath: '/data' },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  if (auth) {
    // Only what a node needs: the hashes to check logins and the replication password to log in
    // to its master; group-readable through fsGroup, never world-readable.
    volumes.push(
      {
        name: 'auth',
        secret: {
          secretName: names.redisAuthSecret,
          defaultMode: 0o440,
          items: [
            ...(Object.keys(REDIS_USERS) as (keyof typeof REDIS_USERS)[]).map((role) => ({
              key: REDIS_SECRET_KEYS.hash(role),
              path: REDIS_SECRET_KEYS.hash(role),
            })),
            {
              key: REDIS_SECRET_KEYS.replicationPassword,
              path: REDIS_SECRET_KEYS.replicationPassword,
            },
          ],
        },
      },
      { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    );
    volumeMounts.push(
      { name: 'auth', mountPath: AUTH_DIR, readOnly: true },
      { name: 'run', mountPath: RUN_DIR },
    );
  }
  const tls = redisTlsPodParts(cluster);
  volumes.push(...tls.volumes);
  volumeMounts.push(...tls.volumeMounts);
  if (!r.persistence.enabled) volumes.push({ name: 'data', emptyDir: {} });
  volumes.push(...redisExporterVolumes(cluster));

  const spec: Record<string, unknown> = {
    replicas: Math.max(redisNodesPerShard(cluster), retainedNodes),
    serviceName: name,
    podManagementPolicy: 'Parallel',
    updateStrategy: { type: 'OnDelete' },
    selector: { matchLabels: selectorLabels(cluster, 'redis', shard) },
    template: {
      metadata: {
        labels: componentLabels(cluster, 'redis', shard),
        annotations: {
          'socketfleet.dev/config-hash': contentHash(
            renderRedisConf(cluster) + renderRedisStartScript(cluster),
          ),
        },
      },
      spec: {
        serviceAccountName: names.serviceAccount,
        automountServiceAccountToken: false,
        securityContext: podSecurity(REDIS_UID),
        terminationGracePeriodSeconds: 10,
        // Preferred, not required: a shard's master and replica on one node still beat a
        // replica left Pending on a small cluster; with enough nodes they never share one.
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              {
                weight: 100,
                podAffinityTerm: {
                  topologyKey: HOSTNAME_TOPOLOGY_KEY,
                  labelSelector: { matchLabels: selectorLabels(cluster, 'redis', shard) },
                },
              },
            ],
          },
        },
        containers: [
          {
            name: 'redis',
            image: r.image,
            ...pullPolicy(cluster.spec.imagePullPolicy),
            // Redis keeps its files in the working directory; the conf stays path-free so the
            // same file runs outside Kubernetes too.
            workingDir: '/data',
            command: ['sh', `${CONF_DIR}/${REDIS_START_KEY}`],
            env,
            ports: [
              { name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' },
              { name: 'bus', containerPort: REDIS_BUS_PORT, protocol: 'TCP' },
            ],
            // Ready means the process answers; joining the cluster is the operator's job and
            // needs the pod's DNS name, which the Service publishes before readiness anyway.
            // With the default user off, NOAUTH is that answer: the probe needs no password.
            // With TLS the probe speaks TLS too: ready then also means a handshake that the
            // mounted CA accepts.
            readinessProbe: {
              exec: {
                command: [
                  'sh',
                  '-c',
                  `redis-cli${redisCliTlsArgs(cluster)} -p ${REDIS_PORT} ping | grep -q -e PONG -e NOAUTH`,
                ],
              },
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
            volumeMounts,
          },
          ...redisExporterContainers(cluster),
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

/** At most one node of a shard down at a time through voluntary disruptions (node drains). */
export function buildRedisShardPdb(cluster: RealtimeCluster, shard: number): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).redisShard(shard),
      componentLabels(cluster, 'redis', shard),
    ),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(cluster, 'redis', shard) },
    },
  };
}

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** A Redis pod the operator runs: which shard, which ordinal of its StatefulSet, and where. */
export interface RedisPodRef extends RedisNodeAddress {
  shard: number;
  ordinal: number;
  /** The pod's name, `<cluster>-redis-<shard>-<ordinal>`. */
  pod: string;
}

/**
 * Every Redis pod of the given shards, by the stable DNS name it announces. Without a namespace
 * (render of a bare manifest) the name ends at the Service, which resolves through the pod's
 * DNS search path.
 */
export function kubernetesRedisPods(
  cluster: RealtimeCluster,
  shards: readonly number[] = range(cluster.spec.redis.shards),
): RedisPodRef[] {
  const names = resourceNames(cluster.metadata.name);
  const ns = cluster.metadata.namespace;
  const out: RedisPodRef[] = [];
  for (const shard of shards) {
    const svc = names.redisShard(shard);
    for (let ordinal = 0; ordinal < redisNodesPerShard(cluster); ordinal++) {
      const pod = `${svc}-${ordinal}`;
      out.push({
        shard,
        ordinal,
        pod,
        host: ns ? `${pod}.${svc}.${ns}.svc` : `${pod}.${svc}`,
        port: REDIS_PORT,
      });
    }
  }
  return out;
}

/**
 * The seed nodes the servers get in server.json `redis.nodes`: every pod of every desired shard
 * (any one of them lets a client discover the cluster), or the external cluster's seeds.
 */
export function redisClusterNodes(cluster: RealtimeCluster): RedisNodeAddress[] {
  const external = cluster.spec.redis.external;
  if (external) return external.nodes.map((n) => ({ host: n.host, port: n.port }));
  return kubernetesRedisPods(cluster).map((p) => ({ host: p.host, port: p.port }));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
