import type { RealtimeCluster } from '../api/realtimecluster.js';
import { replicasClampWarning } from './autoscaling.js';

/** Settings that are valid but defeat their own purpose, explained in one sentence each. */
export function specWarnings(cluster: RealtimeCluster): string[] {
  const g = cluster.spec.gateway;
  const out: string[] = [];
  const clamped = replicasClampWarning(cluster.spec);
  if (clamped) out.push(clamped);
  if (g.mode !== 'managed') return out;
  const addressHashing = g.balance !== 'room-affinity';
  if (
    addressHashing &&
    !g.proxyProtocol &&
    g.service.type !== 'ClusterIP' &&
    g.service.externalTrafficPolicy === 'Cluster'
  ) {
    out.push(
      `spec.gateway.service.externalTrafficPolicy: Cluster hides client addresses behind node addresses, so ${g.balance} pins whole nodes to one pod; use Local or proxyProtocol.`,
    );
  }
  const limited = g.limits.connectionsPerAddress > 0 || g.limits.handshakesPerSecondPerAddress > 0;
  if (
    limited &&
    !g.proxyProtocol &&
    g.trustedProxies.length === 0 &&
    g.service.type !== 'ClusterIP' &&
    g.service.externalTrafficPolicy === 'Cluster'
  ) {
    out.push(
      'spec.gateway.limits: with externalTrafficPolicy Cluster every client arrives from a node address, so the per-address limits count all clients behind one node together; use Local, proxyProtocol or trustedProxies, or set the limits to 0.',
    );
  }
  if (g.proxyProtocol && g.trustedProxies.length === 0) {
    out.push(
      'spec.gateway.trustedProxies: empty with proxyProtocol, so any peer that can reach the gateway may claim any client address; list the load balancer CIDRs.',
    );
  }
  return out;
}
