import type { RealtimeCluster } from '../api/realtimecluster.js';
import { clusterLabels, objectMeta, selectorLabels } from './labels.js';
import { resourceNames } from './names.js';
import { GATEWAY_PORT, OPS_PORT, REDIS_PORT, SOCKETIO_PORT } from './ports.js';
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

const tcp = (port: number): { protocol: string; port: number } => ({ protocol: 'TCP', port });

export function buildNetworkPolicies(cluster: RealtimeCluster): KubeObject[] {
  const names = resourceNames(cluster.metadata.name).networkPolicy;
  const managed = cluster.spec.gateway.mode === 'managed';
  const fromPods = (component: 'server' | 'gateway'): Record<string, unknown> => ({
    podSelector: { matchLabels: selectorLabels(cluster, component) },
  });

  const serverIngress: Record<string, unknown>[] = managed
    ? [{ from: [fromPods('gateway')], ports: [tcp(SOCKETIO_PORT)] }]
    : // With gateway mode none the user's own load balancer must reach the servers.
      [{ ports: [tcp(SOCKETIO_PORT)] }];
  // Metrics scrapers live in other namespaces with labels we cannot know.
  serverIngress.push({ ports: [tcp(OPS_PORT)] });

  const policies = [
    policy(cluster, names.redis, selectorLabels(cluster, 'redis'), [
      { from: [fromPods('server')], ports: [tcp(REDIS_PORT)] },
    ]),
    policy(cluster, names.server, selectorLabels(cluster, 'server'), serverIngress),
  ];
  if (managed) {
    policies.push(
      policy(cluster, names.gateway, selectorLabels(cluster, 'gateway'), [
        { ports: [tcp(GATEWAY_PORT)] },
      ]),
    );
  }
  return policies;
}
