import type { RealtimeClusterSpec } from '../api/realtimecluster.js';

/**
 * Server pods to run: spec.replicas, clamped to [minReplicas, maxReplicas] while autoscaling is
 * enabled, so a hand-set count outside the range never reaches the Deployment (the autopilot
 * then writes the clamped value back into spec.replicas).
 */
export function serverReplicas(spec: RealtimeClusterSpec): number {
  const a = spec.autoscaling;
  if (!a.enabled) return spec.replicas;
  return Math.min(a.maxReplicas, Math.max(a.minReplicas, spec.replicas));
}

/** The sentence that says a hand-set replica count was clamped; undefined when it was not. */
export function replicasClampWarning(spec: RealtimeClusterSpec): string | undefined {
  const effective = serverReplicas(spec);
  if (effective === spec.replicas) return undefined;
  const a = spec.autoscaling;
  return `spec.replicas: ${spec.replicas} is outside spec.autoscaling [${a.minReplicas}, ${a.maxReplicas}], so ${effective} server pods run; change minReplicas/maxReplicas, or disable autoscaling to set replicas by hand.`;
}
