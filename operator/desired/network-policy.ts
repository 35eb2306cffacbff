import type { RealtimeCluster } from '../api/realtimecluster.js';
import { clusterLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import {
  GATEWAY_PORT,
  GATEWAY_SYNC_PORT,
  GATEWAY_TLS_PORT,
  NGINX_EXPORTER_PORT,
  OPS_PORT,
  REDIS_EXPORTER_PORT,
  REDIS_PORT,
  SOCKETIO_PORT,
} from './ports.js';
import { REDIS_BUS_PORT } from './redis.js';
import type { KubeObject } from './types.js';

function policy(
  cluster: RealtimeCluster,
  name: string,
  podSelector: Record<string, string>,
  ingress: Record<string, unknown>[],
): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: objectMeta(cluster, name, clusterLabels(cluster)),
    spec: { podSelector: { matchLabels: podSelector }, policyTypes: ['Ingress'], ingress },
  };
}

/** The operator's pods as the chart labels them, in whatever namespace it was installed. */
const OPERATOR_PEER = {
  namespaceSelector: {},
  podSelector: {
    matchLabels: {
      'app.kubernetes.io/name': 'socketfleet-operator',
      'app.kubernetes.io/component': 'operator',
    },
  },
};

const tcp = (port: number): { protocol: string; port: number } => ({ protocol: 'TCP', port });

/**
 * Clients on the gateway's ports (plain, and HTTPS with spec.gateway.tls), scrapers on the
 * exporter's and the sync sidecar's.
 */
function gatewayIngress(cluster: RealtimeCluster): Record<string, unknown>[] {
  const g = cluster.spec.gateway;
  const ports = g.tls === undefined || g.tls.redirectHttp ? [tcp(GATEWAY_PORT)] : [];
  if (g.tls !== undefined) ports.push(tcp(GATEWAY_TLS_PORT));
  const ingress: Record<string, unknown>[] = [{ ports }];
  if (g.exporter.enabled) ingress.push({ ports: [tcp(NGINX_EXPORTER_PORT)] });
  // The operator's autopilot reads the sync sidecar's reload state (GatewayConfigRejected); its
  // own rule keeps it working if the open rule below is ever narrowed to known scrapers.
  ingress.push({ from: [OPERATOR_PEER], ports: [tcp(GATEWAY_SYNC_PORT)] });
  // Prometheus scrapes the same port for the chart's alert, from a namespace we cannot know.
  ingress.push({ ports: [tcp(GATEWAY_SYNC_PORT)] });
  return ingress;
}

export function buildNetworkPolicies(cluster: RealtimeCluster): KubeObject[] {
  const names = resourceNames(cluster.metadata.name).networkPolicy;
  const managed = cluster.spec.gateway.mode === 'managed';
  const fromPods = (component: 'server' | 'gateway' | 'redis'): Record<string, unknown> => ({
    podSelector: { matchLabels: selectorLabels(cluster, component) },
  });

  const serverIngress: Record<string, unknown>[] = managed
    ? [{ from: [fromPods('gateway')], ports: [tcp(SOCKETIO_PORT)] }]
    : // With gateway mode none the user's own load balancer must reach the servers.
      [{ ports: [tcp(SOCKETIO_PORT)] }];
  // The operator's autopilot reads every server's /metrics to autoscale and detect trouble; its
  // own rule keeps it working if the open rule below is ever narrowed to known scrapers.
  serverIngress.push({ from: [OPERATOR_PEER], ports: [tcp(OPS_PORT)] });
  // Metrics scrapers live in other namespaces with labels we cannot know.
  serverIngress.push({ ports: [tcp(OPS_PORT)] });

  const policies: KubeObject[] = [];
  if (!cluster.spec.redis.external) {
    policies.push(
      policy(cluster, names.redis, selectorLabels(cluster, 'redis'), [
        { from: [fromPods('server')], ports: [tcp(REDIS_PORT)] },
        // Nodes gossip on the bus port and replicas sync from masters on the client port.
        { from: [fromPods('redis')], ports: [tcp(REDIS_PORT), tcp(REDIS_BUS_PORT)] },
        // The operator forms, heals and reshards the cluster; it runs in its own namespace.
        { from: [OPERATOR_PEER], ports: [tcp(REDIS_PORT)] },
        // Scrapers of the optional exporter live in other namespaces with unknown labels.
        ...(cluster.spec.redis.exporter.enabled ? [{ ports: [tcp(REDIS_EXPORTER_PORT)] }] : []),
      ]),
    );
  }
  policies.push(policy(cluster, names.server, selectorLabels(cluster, 'server'), serverIngress));
  if (managed) {
    policies.push(
      policy(cluster, names.gateway, selectorLabels(cluster, 'gateway'), gatewayIngress(cluster)),
    );
  }
  return policies;
}
