import { clientAuthEnv } from './client-auth.js';
import { serverReplicas } from './autoscaling.js';
import { CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH } from '../../server-image/src/config.js';
import { SESSION_ADDRESS_ENV } from '../../server-image/src/session-tag.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { contentHash } from './hash.js';
import { componentLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import { OPS_PORT, SOCKETIO_PORT } from './ports.js';
import { redisClientPodParts } from './redis-client.js';
import { podSecurity, pullPolicy, restrictedContainerSecurity, SERVER_UID } from './security.js';
import { redisClusterNodes } from './redis.js';
import { buildServerConfig } from './server-config.js';
import { defaultTopologySpread } from './spread.js';
import type { ServerTuning } from './tuning.js';
import type { KubeObject } from './types.js';

export const SERVER_CONFIG_KEY = 'server.json';
export const CONFIG_HASH_ANNOTATION = 'socketfleet.dev/config-hash';
const CONFIG_DIR = DEFAULT_CONFIG_PATH.slice(0, DEFAULT_CONFIG_PATH.lastIndexOf('/'));
/** Longest preStop wait for the gateway to stop sending new sessions before the drain starts. */
const MAX_PRESTOP_SECONDS = 5;
/** How long without a new session counts as "the gateway no longer picks this pod". */
const PRESTOP_QUIET_MS = 2000;

export function renderServerConfigJson(cluster: RealtimeCluster): string {
  return JSON.stringify(buildServerConfig(cluster, redisClusterNodes(cluster)), null, 2) + '\n';
}

/**
 * The hash that rolls the servers when server.json changes in a way a running server must see.
 * The seeds of operator-run shards are left out: they are only where a starting server first
 * asks for the slot map, and running servers learn shards joining and leaving from the cluster
 * itself, so a change of spec.redis.shards moves slots online without restarting any server
 * (the ConfigMap still lists every current pod, for servers that start later). An external
 * cluster's seeds stay in: new seeds may name a different cluster, which needs new pods.
 */
export function serverConfigHash(cluster: RealtimeCluster): string {
  const seeds = cluster.spec.redis.external ? redisClusterNodes(cluster) : [];
  return contentHash(JSON.stringify(buildServerConfig(cluster, seeds)));
}

export function buildServerConfigMap(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).serverConfig,
      componentLabels(cluster, 'server'),
    ),
    data: { [SERVER_CONFIG_KEY]: renderServerConfigJson(cluster) },
  };
}

export function buildServerService(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).serverService,
      componentLabels(cluster, 'server'),
    ),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(cluster, 'server'),
      ports: [
        { name: 'socketio', port: SOCKETIO_PORT, targetPort: 'socketio', protocol: 'TCP' },
        { name: 'ops', port: OPS_PORT, targetPort: 'ops', protocol: 'TCP' },
      ],
    },
  };
}

/** Seconds of preStop sleep that still leave the drain window inside the grace period. */
export function preStopSeconds(cluster: RealtimeCluster): number {
  const spare = cluster.spec.terminationGracePeriodSeconds - cluster.spec.socketio.drainSeconds - 1;
  return Math.max(0, Math.min(MAX_PRESTOP_SECONDS, spare));
}

export function buildServerDeployment(cluster: RealtimeCluster, tuning: ServerTuning): KubeObject {
  const spec = cluster.spec;
  const names = resourceNames(cluster.metadata.name);
  const env: Record<string, unknown>[] = [
    { name: CONFIG_PATH_ENV, value: DEFAULT_CONFIG_PATH },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // The address in the server's EndpointSlice: session ids carry its tag, so the gateway sends
    // a session's requests to this pod whatever its hash ring does (session-tag.ts).
    { name: SESSION_ADDRESS_ENV, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  ];
  const redisClient = redisClientPodParts(cluster);
  env.push(...redisClient.env, ...clientAuthEnv(cluster), ...tuning.env);

  // The pod template already rolls on its own changes; the ConfigMap content is the one input
  // that would otherwise change under running pods without replacing them.
  const configHash = serverConfigHash(cluster);

  const container: Record<string, unknown> = {
    name: 'server',
    image: spec.image,
    ...pullPolicy(spec.imagePullPolicy),
    env,
    ports: [
      { name: 'socketio', containerPort: SOCKETIO_PORT, protocol: 'TCP' },
      { name: 'ops', containerPort: OPS_PORT, protocol: 'TCP' },
    ],
    readinessProbe: {
      httpGet: { path: '/readyz', port: 'ops' },
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: '/healthz', port: 'ops' },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    resources: spec.resources,
    securityContext: restrictedContainerSecurity(SERVER_UID),
    volumeMounts: [
      { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      ...redisClient.volumeMounts,
    ],
  };
  // The pod leaves its EndpointSlices as soon as it is deleted, and the gateway drops it within
  // about a second; until then new sessions keep arriving and are served normally. The hook
  // returns once none came for a quiet period (bounded), and only then does SIGTERM start the
  // drain, so new clients are not refused by a server the gateway still picks.
  const wait = preStopSeconds(cluster);
  if (wait > 0) {
    const quietMs = Math.min(PRESTOP_QUIET_MS, (wait * 1000) / 2);
    container.lifecycle = {
      preStop: {
        httpGet: { path: `/prestop?quietMs=${quietMs}&maxMs=${wait * 1000}`, port: 'ops' },
      },
    };
  }

  const podSecurityContext = podSecurity(SERVER_UID);
  if (tuning.podSysctls.length > 0) podSecurityContext.sysctls = tuning.podSysctls;

  const podSpec: Record<string, unknown> = {
    serviceAccountName: names.serviceAccount,
    automountServiceAccountToken: false,
    securityContext: podSecurityContext,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
  };
  if (tuning.initContainers.length > 0) podSpec.initContainers = tuning.initContainers;
  podSpec.containers = [container];
  podSpec.volumes = [
    { name: 'config', configMap: { name: names.serverConfig } },
    { name: 'tmp', emptyDir: {} },
    ...redisClient.volumes,
  ];
  if (spec.nodeSelector) podSpec.nodeSelector = spec.nodeSelector;
  if (spec.tolerations) podSpec.tolerations = spec.tolerations;
  if (spec.affinity) podSpec.affinity = spec.affinity;
  // A given list, even an empty one, replaces the default.
  podSpec.topologySpreadConstraints =
    spec.topologySpreadConstraints ?? defaultTopologySpread(cluster, 'server');
  if (spec.priorityClassName) podSpec.priorityClassName = spec.priorityClassName;

  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: objectMeta(cluster, names.server, componentLabels(cluster, 'server')),
    spec: {
      replicas: serverReplicas(spec),
      selector: { matchLabels: selectorLabels(cluster, 'server') },
      // New pods are Ready before old ones go, so capacity never dips during a rollout; each
      // old pod then spreads its clients' reconnects over drainSeconds.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: componentLabels(cluster, 'server'),
          annotations: { [CONFIG_HASH_ANNOTATION]: configHash },
        },
        spec: podSpec,
      },
    },
  };
}
