import type { RealtimeCluster } from '../api/realtimecluster.js';
import { contentHash } from './hash.js';
import { componentLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import {
  kubernetesNginxRuntime,
  NGINX_CONF_DIR,
  NGINX_CONF_FILE,
  NGINX_TMP_DIR,
  renderNginxConf,
} from './nginx.js';
import {
  GATEWAY_HEALTH_PORT,
  GATEWAY_LIVENESS_PATH,
  GATEWAY_PORT,
  GATEWAY_READINESS_PATH,
  SOCKETIO_PORT,
} from './ports.js';
import { NGINX_UID, podSecurity, pullPolicy, restrictedContainerSecurity } from './security.js';
import type { Endpoint, KubeObject } from './types.js';

export const GATEWAY_HASH_ANNOTATION = 'socketfleet.dev/gateway-config-hash';
const CONF_PATH = `${NGINX_CONF_DIR}/${NGINX_CONF_FILE}`;
const HASH_PLACEHOLDER: Endpoint = { ip: '0.0.0.0', port: SOCKETIO_PORT };

/**
 * Endpoint changes rewrite the ConfigMap; the kubelet swaps the mounted directory (which is why
 * there is no subPath) and this loop reloads nginx in place, so clients keep their connections.
 * A conf that fails `nginx -t` is logged and skipped, leaving the running one in service.
 */
export function reloaderScript(confPath: string): string {
  return [
    `conf=${confPath}`,
    'last=$(cksum < "$conf")',
    'echo "socketfleet: watching $conf for changes"',
    'while true; do',
    '  sleep 2',
    '  now=$(cksum < "$conf" 2>/dev/null) || continue',
    '  [ "$now" = "$last" ] && continue',
    '  last="$now"',
    '  if nginx -e stderr -t -q -c "$conf"; then',
    '    nginx -e stderr -s reload -c "$conf" && echo "socketfleet: nginx.conf changed, nginx reloaded"',
    '  else',
    '    echo "socketfleet: new nginx.conf failed nginx -t, keeping the running configuration" >&2',
    '  fi',
    'done',
  ].join('\n');
}

export function buildGatewayConfigMap(
  cluster: RealtimeCluster,
  upstreams: readonly Endpoint[],
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: objectMeta(
      cluster,
      resourceNames(cluster.metadata.name).gatewayConfig,
      componentLabels(cluster, 'gateway'),
    ),
    data: {
      [NGINX_CONF_FILE]: renderNginxConf(cluster, upstreams, kubernetesNginxRuntime(cluster)),
    },
  };
}

export function buildGatewayService(cluster: RealtimeCluster): KubeObject {
  const svc = cluster.spec.gateway.service;
  const spec: Record<string, unknown> = {
    type: svc.type,
    selector: selectorLabels(cluster, 'gateway'),
    ports: [{ name: 'http', port: svc.port, targetPort: 'http', protocol: 'TCP' }],
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
  // The conf with a fixed stand-in upstream: every static directive counts (balance included),
  // the changing list of ready endpoints does not.
  const staticHash = contentHash(
    renderNginxConf(cluster, [HASH_PLACEHOLDER], kubernetesNginxRuntime(cluster)),
  );
  const mounts = [
    { name: 'conf', mountPath: NGINX_CONF_DIR, readOnly: true },
    { name: 'run', mountPath: NGINX_TMP_DIR },
  ];
  const security = restrictedContainerSecurity(NGINX_UID);
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
          serviceAccountName: names.serviceAccount,
          automountServiceAccountToken: false,
          // The reloader signals the nginx master, so both containers see one process tree.
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
              command: ['nginx', '-e', 'stderr', '-c', CONF_PATH, '-g', 'daemon off;'],
              ports: [
                { name: 'http', containerPort: GATEWAY_PORT, protocol: 'TCP' },
                { name: 'health', containerPort: GATEWAY_HEALTH_PORT, protocol: 'TCP' },
              ],
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
              volumeMounts: mounts,
            },
            {
              name: 'reloader',
              image: g.image,
              ...pullPolicy(cluster.spec.imagePullPolicy),
              command: ['sh', '-c', reloaderScript(CONF_PATH)],
              resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '64Mi' } },
              securityContext: security,
              volumeMounts: mounts,
            },
          ],
          volumes: [
            { name: 'conf', configMap: { name: names.gatewayConfig } },
            { name: 'run', emptyDir: {} },
          ],
        },
      },
    },
  };
}
