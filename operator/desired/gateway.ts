import type { RealtimeCluster } from '../api/realtimecluster.js';
import { contentHash } from './hash.js';
import { componentLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import {
  kubernetesNginxRuntime,
  NGINX_CONF_DIR,
  NGINX_CONF_FILE,
  NGINX_TLS_DIR,
  NGINX_TMP_DIR,
  NGINX_UPSTREAMS_FILE,
  renderNginxConf,
} from './nginx.js';
import {
  GATEWAY_HEALTH_PORT,
  GATEWAY_LIVENESS_PATH,
  GATEWAY_PORT,
  GATEWAY_READINESS_PATH,
  GATEWAY_SYNC_LOG_PORT,
  GATEWAY_SYNC_PORT,
  GATEWAY_TLS_PORT,
  SOCKETIO_PORT,
} from './ports.js';
import { gatewayExporterContainers } from './exporters.js';
import { NGINX_UID, podSecurity, pullPolicy, restrictedContainerSecurity } from './security.js';
import type { KubeObject } from './types.js';

export const GATEWAY_HASH_ANNOTATION = 'socketfleet.dev/gateway-config-hash';
const CONF_PATH = `${NGINX_CONF_DIR}/${NGINX_CONF_FILE}`;
/** Where the sync sidecar, and only it, sees its service account token. */
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const TOKEN_SECONDS = 3600;
/** The sidecar sees the certificate (never the key) to reload nginx when it is renewed. */
const TLS_WATCH_DIR = '/etc/socketfleet/tls-watch';

/**
 * With ip-hash, how long a server that left stays listed as `down`: its whole termination
 * (preStop and drain), plus a margin, so its clients have moved before the list closes up.
 */
export function leavingGraceSeconds(cluster: RealtimeCluster): number {
  return cluster.spec.terminationGracePeriodSeconds + 10;
}

/**
 * Where clients connect (status.endpoint): the load balancer's address when it has one, else
 * the gateway Service's name; `https://` and the TLS port when the gateway terminates TLS.
 */
export function clusterEndpoint(
  cluster: RealtimeCluster,
  namespace: string,
  loadBalancerHost: string | undefined,
): string {
  const names = resourceNames(cluster.metadata.name);
  const g = cluster.spec.gateway;
  if (g.mode !== 'managed') return `${names.serverService}.${namespace}.svc:${SOCKETIO_PORT}`;
  const host = loadBalancerHost ?? `${names.gatewayService}.${namespace}.svc`;
  return g.tls ? `https://${host}:${g.tls.port}` : `${host}:${g.service.port}`;
}

/** The static nginx.conf; the upstream block it includes is the sidecar's. */
export function buildGatewayConfigMap(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).gatewayConfig,
      componentLabels(cluster, 'gateway'),
    ),
    data: {
      [NGINX_CONF_FILE]: renderNginxConf(cluster, [], kubernetesNginxRuntime(cluster)),
    },
  };
}

/** The sync sidecar's identity: it alone in the cluster's pods talks to the API server. */
export function buildGatewaySyncServiceAccount(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).gatewaySync,
      componentLabels(cluster, 'gateway'),
    ),
    // The pod mounts a token into the sidecar container only (see the projected volume).
    automountServiceAccountToken: false,
  };
}

/** Read access to EndpointSlices in this namespace, and nothing else. */
export function buildGatewaySyncRole(cluster: RealtimeCluster): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).gatewaySync,
      componentLabels(cluster, 'gateway'),
    ),
    rules: [
      {
        apiGroups: ['discovery.k8s.io'],
        resources: ['endpointslices'],
        verbs: ['get', 'list', 'watch'],
      },
    ],
  };
}

export function buildGatewaySyncRoleBinding(cluster: RealtimeCluster): KubeObject {
  const name = resourceNames(cluster.metadata.name).gatewaySync;
  const subject: Record<string, string> = { kind: 'ServiceAccount', name };
  if (cluster.metadata.namespace !== undefined) subject.namespace = cluster.metadata.namespace;
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: objectMeta(cluster, name, componentLabels(cluster, 'gateway')),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [subject],
  };
}

export function buildGatewayService(cluster: RealtimeCluster): KubeObject {
  const svc = cluster.spec.gateway.service;
  const tls = cluster.spec.gateway.tls;
  const ports: Record<string, unknown>[] = [];
  // With TLS and no redirect, clear text has no port at all.
  if (tls === undefined || tls.redirectHttp) {
    ports.push({ name: 'http', port: svc.port, targetPort: 'http', protocol: 'TCP' });
  }
  if (tls !== undefined) {
    ports.push({ name: 'https', port: tls.port, targetPort: 'https', protocol: 'TCP' });
  }
  const spec: Record<string, unknown> = {
    type: svc.type,
    selector: selectorLabels(cluster, 'gateway'),
    ports,
  };
  if (svc.type !== 'ClusterIP') spec.externalTrafficPolicy = svc.externalTrafficPolicy;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).gatewayService,
      componentLabels(cluster, 'gateway'),
      svc.annotations,
    ),
    spec,
  };
}

export function buildGatewayDeployment(cluster: RealtimeCluster): KubeObject {
  const g = cluster.spec.gateway;
  const names = resourceNames(cluster.metadata.name);
  // Every static directive counts (balance included); the upstreams are the sidecar's.
  const staticHash = contentHash(renderNginxConf(cluster, [], kubernetesNginxRuntime(cluster)));
  const security = restrictedContainerSecurity(NGINX_UID);
  const run = { name: 'run', mountPath: NGINX_TMP_DIR };
  const tls = g.tls;
  const nginxPorts: Record<string, unknown>[] = [];
  // With TLS and no redirect, nginx opens no clear-text port for clients at all.
  if (tls === undefined || tls.redirectHttp) {
    nginxPorts.push({ name: 'http', containerPort: GATEWAY_PORT, protocol: 'TCP' });
  }
  if (tls !== undefined) {
    nginxPorts.push({ name: 'https', containerPort: GATEWAY_TLS_PORT, protocol: 'TCP' });
  }
  nginxPorts.push({ name: 'health', containerPort: GATEWAY_HEALTH_PORT, protocol: 'TCP' });
  const nginxMounts: Record<string, unknown>[] = [
    { name: 'conf', mountPath: NGINX_CONF_DIR, readOnly: true },
    run,
  ];
  const syncMounts: Record<string, unknown>[] = [
    run,
    { name: 'token', mountPath: TOKEN_DIR, readOnly: true },
  ];
  const syncArgs: string[] = [];
  const tlsVolumes: Record<string, unknown>[] = [];
  if (tls !== undefined) {
    nginxMounts.push({ name: 'tls', mountPath: NGINX_TLS_DIR, readOnly: true });
    syncMounts.push({ name: 'tls-cert', mountPath: TLS_WATCH_DIR, readOnly: true });
    syncArgs.push(`--reload-on-change=${TLS_WATCH_DIR}/tls.crt`);
    tlsVolumes.push(
      // No subPath: the kubelet then swaps the files in place when cert-manager renews them.
      { name: 'tls', secret: { secretName: tls.secretName, defaultMode: 0o440 } },
      {
        name: 'tls-cert',
        secret: { secretName: tls.secretName, items: [{ key: 'tls.crt', path: 'tls.crt' }] },
      },
    );
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: objectMeta(cluster, names.gateway, componentLabels(cluster, 'gateway')),
    spec: {
      replicas: g.replicas,
      selector: { matchLabels: selectorLabels(cluster, 'gateway') },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: componentLabels(cluster, 'gateway'),
          annotations: { [GATEWAY_HASH_ANNOTATION]: staticHash },
        },
        spec: {
          serviceAccountName: names.gatewaySync,
          automountServiceAccountToken: false,
          // The sidecar signals the nginx master (same uid), so both containers share one
          // process tree.
          shareProcessNamespace: true,
          securityContext: podSecurity(NGINX_UID),
          terminationGracePeriodSeconds: 30,
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    topologyKey: 'kubernetes.io/hostname',
                    labelSelector: { matchLabels: selectorLabels(cluster, 'gateway') },
                  },
                },
              ],
            },
          },
          containers: [
            {
              name: 'nginx',
              image: g.image,
              ...pullPolicy(cluster.spec.imagePullPolicy),
              // nginx.conf includes the sidecar's upstream file, so nginx starts once it exists.
              command: [
                'sh',
                '-c',
                `until [ -s ${NGINX_UPSTREAMS_FILE} ]; do sleep 0.2; done; exec nginx -e stderr -c ${CONF_PATH} -g 'daemon off;'`,
              ],
              ports: nginxPorts,
              // Both paths ask the same workers; the thresholds differ. A busy nginx leaves the
              // Service within seconds, but is restarted (dropping every WebSocket it holds)
              // only after a minute without a single answer.
              readinessProbe: {
                httpGet: { path: GATEWAY_READINESS_PATH, port: 'health' },
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: GATEWAY_LIVENESS_PATH, port: 'health' },
                initialDelaySeconds: 5,
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 6,
              },
              // Let the Service drop this pod before nginx stops accepting.
              lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
              resources: g.resources,
              securityContext: security,
              volumeMounts: nginxMounts,
            },
            {
              name: 'sync',
              image: g.syncImage,
              ...pullPolicy(cluster.spec.imagePullPolicy),
              args: [
                'gateway-sync',
                `--service=${names.serverService}`,
                `--balance=${g.balance}`,
                `--upstreams-file=${NGINX_UPSTREAMS_FILE}`,
                `--pid-file=${kubernetesNginxRuntime(cluster).pidFile}`,
                `--leaving-grace-seconds=${leavingGraceSeconds(cluster)}`,
                `--metrics-port=${GATEWAY_SYNC_PORT}`,
                `--nginx-log-port=${GATEWAY_SYNC_LOG_PORT}`,
                ...syncArgs,
              ],
              // socketfleet_gateway_config_rejected and nginx's last refusal, for the operator's
              // GatewayConfigRejected condition and the chart's alert.
              ports: [{ name: 'sync-metrics', containerPort: GATEWAY_SYNC_PORT, protocol: 'TCP' }],
              resources: { requests: { cpu: '10m', memory: '48Mi' }, limits: { memory: '128Mi' } },
              // nginx's uid: signalling the master needs the same user.
              securityContext: security,
              volumeMounts: syncMounts,
            },
            ...gatewayExporterContainers(cluster),
          ],
          volumes: [
            { name: 'conf', configMap: { name: names.gatewayConfig } },
            { name: 'run', emptyDir: {} },
            ...tlsVolumes,
            {
              // What automounting would give, but mounted into the sidecar alone: nginx, which
              // faces the clients, holds no credential.
              name: 'token',
              projected: {
                sources: [
                  {
                    serviceAccountToken: { path: 'token', expirationSeconds: TOKEN_SECONDS },
                  },
                  {
                    configMap: {
                      name: 'kube-root-ca.crt',
                      items: [{ key: 'ca.crt', path: 'ca.crt' }],
                    },
                  },
                  {
                    downwardAPI: {
                      items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }],
                    },
                  },
                ],
              },
            },
          ],
        },
      },
    },
  };
}
