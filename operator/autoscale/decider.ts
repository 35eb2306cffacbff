import type { AutoscalingSpec } from '../api/realtimecluster.js';

/**
 * The autoscaler's decision, as a pure function of what was sampled and what was decided before.
 * It follows the HorizontalPodAutoscaler's algorithm (pkg/controller/podautoscaler), adapted to
 * connections: a tolerance band around the target, stabilisation windows over past
 * recommendations, step limits per period, then [min, max]. No clock, no I/O: the loop passes
 * `now` and keeps the returned state.
 */

/** One ready server pod's metrics as last read; a field is undefined when the scrape failed. */
export interface PodSample {
  pod: string;
  connections?: number | undefined;
  /** p99 event-loop lag in milliseconds. */
  lagMs?: number | undefined;
}

export interface ScaleRecord {
  at: number;
  /** Replicas after the change minus before. */
  delta: number;
}

export interface DeciderState {
  /** Recommendations (before stabilisation) with the time they were made, oldest first. */
  recommendations: { at: number; replicas: number }[];
  /** Changes the autoscaler made, oldest first. */
  scales: ScaleRecord[];
}

export interface DeciderInput {
  now: number;
  /** spec.replicas now. */
  currentReplicas: number;
  /** Every pod the autoscaler counts: ready server pods, each with whatever was read from it. */
  pods: PodSample[];
  spec: AutoscalingSpec;
  state: DeciderState;
}

export interface Decision {
  desiredReplicas: number;
  /** One sentence, for status, the Event and the log. */
  reason: string;
  /** CamelCase word for the Event reason and metrics. */
  kind:
    | 'ScaleUp'
    | 'ScaleDown'
    | 'Hold'
    | 'BelowMinimum'
    | 'AboveMaximum'
    | 'NoMetrics'
    | 'Stabilizing'
    | 'RateLimited';
  connections: number;
  sampledPods: number;
  meanLagMs: number | undefined;
  state: DeciderState;
}

export const EMPTY_STATE: DeciderState = { recommendations: [], scales: [] };

/** Mean of the defined values, undefined when none is. */
function mean(values: (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (defined.length === 0) return undefined;
  return defined.reduce((a, b) => a + b, 0) / defined.length;
}

export function decide(input: DeciderInput): Decision {
  const { now, currentReplicas: current, pods, spec } = input;
  const up = spec.behavior.scaleUp;
  const down = spec.behavior.scaleDown;
  const tolerance = spec.tolerancePercent / 100;
  const sampled = pods.filter((p) => p.connections !== undefined);
  const connections = sampled.reduce((sum, p) => sum + (p.connections ?? 0), 0);
  const meanLagMs = mean(pods.map((p) => p.lagMs));
  const clamp = (n: number): number => Math.min(spec.maxReplicas, Math.max(spec.minReplicas, n));
  const keepFor = Math.max(up.stabilizationWindowSeconds, down.stabilizationWindowSeconds) * 1000;
  const longestPeriod = Math.max(up.periodSeconds, down.periodSeconds) * 1000;
  const prune = (s: DeciderState): DeciderState => ({
    recommendations: s.recommendations.filter((r) => now - r.at <= keepFor),
    scales: s.scales.filter((r) => now - r.at <= longestPeriod),
  });
  const base = { connections, sampledPods: sampled.length, meanLagMs };

  // Out of range is fixed first and at once: the user asked for these bounds.
  if (current < spec.minReplicas || current > spec.maxReplicas) {
    const desired = clamp(current);
    const below = current < spec.minReplicas;
    const state = prune(input.state);
    state.scales.push({ at: now, delta: desired - current });
    return {
      ...base,
      desiredReplicas: desired,
      kind: below ? 'BelowMinimum' : 'AboveMaximum',
      reason: `spec.replicas ${current} is ${below ? 'below minReplicas' : 'above maxReplicas'}; set to ${desired}.`,
      state,
    };
  }

  if (sampled.length === 0) {
    return {
      ...base,
      desiredReplicas: current,
      kind: 'NoMetrics',
      reason: `No ready server pod answered its metrics; keeping ${current} replicas.`,
      state: prune(input.state),
    };
  }

  // Connections: the replicas that carry every sampled connection at the target, unless the
  // load is within the tolerance band of what the current replicas carry.
  const ratio = connections / (current * spec.targetConnectionsPerPod);
  let raw =
    Math.abs(ratio - 1) <= tolerance
      ? current
      : Math.ceil(connections / spec.targetConnectionsPerPod);
  let why = `${connections} connections on ${sampled.length} sampled pods, target ${spec.targetConnectionsPerPod} per pod`;
  if (spec.targetEventLoopLagMs !== undefined && meanLagMs !== undefined) {
    const lagRatio = meanLagMs / spec.targetEventLoopLagMs;
    // Lag is not proportional to load below saturation, so it only ever adds pods.
    if (lagRatio > 1 + tolerance) {
      const byLag = Math.ceil(current * lagRatio);
      if (byLag > raw) {
        raw = byLag;
        why = `mean event-loop lag ${meanLagMs.toFixed(1)} ms over the target ${spec.targetEventLoopLagMs} ms`;
      }
    }
  }
  // A pod whose metrics could not be read may carry any load: never remove pods on a partial view.
  const missing = pods.length - sampled.length;
  if (missing > 0 && raw < current) {
    raw = current;
    why += `; ${missing} pod(s) did not answer, so no scale-down`;
  }
  raw = clamp(raw);

  const state = prune(input.state);
  state.recommendations.push({ at: now, replicas: raw });

  // Stabilisation: scale up only to the lowest recommendation of the up window, down only to the
  // highest of the down window (the HPA's rule; the current recommendation is always included).
  const inWindow = (seconds: number): number[] =>
    state.recommendations.filter((r) => now - r.at <= seconds * 1000).map((r) => r.replicas);
  const upFloor = Math.min(...inWindow(up.stabilizationWindowSeconds));
  const downCeiling = Math.max(...inWindow(down.stabilizationWindowSeconds));
  let stabilized = current;
  if (stabilized < upFloor) stabilized = upFloor;
  if (stabilized > downCeiling) stabilized = downCeiling;

  // Step limits: count what was already changed within the period.
  let desired = stabilized;
  let limited = false;
  if (stabilized > current) {
    const added = state.scales
      .filter((s) => s.delta > 0 && now - s.at < up.periodSeconds * 1000)
      .reduce((a, s) => a + s.delta, 0);
    const start = current - added;
    const limit =
      start + Math.max(up.maxPodsPerPeriod, Math.ceil((start * up.maxPercentPerPeriod) / 100));
    if (desired > limit) {
      desired = Math.max(current, limit);
      limited = true;
    }
  } else if (stabilized < current) {
    const removed = state.scales
      .filter((s) => s.delta < 0 && now - s.at < down.periodSeconds * 1000)
      .reduce((a, s) => a - s.delta, 0);
    const start = current + removed;
    const limit =
      start - Math.max(down.maxPodsPerPeriod, Math.floor((start * down.maxPercentPerPeriod) / 100));
    if (desired < limit) {
      desired = Math.min(current, limit);
      limited = true;
    }
  }
  desired = clamp(desired);

  if (desired !== current) state.scales.push({ at: now, delta: desired - current });
  let kind: Decision['kind'];
  let reason: string;
  if (desired > current) {
    kind = 'ScaleUp';
    reason = `${why}: ${current} -> ${desired} replicas${limited ? ` (step limit; ${raw} wanted)` : ''}.`;
  } else if (desired < current) {
    kind = 'ScaleDown';
    reason = `${why}: ${current} -> ${desired} replicas${limited ? ` (step limit; ${raw} wanted)` : ''}.`;
  } else if (raw !== current && limited) {
    kind = 'RateLimited';
    reason = `${why}: ${raw} replicas wanted, step limit reached; keeping ${current}.`;
  } else if (raw !== current) {
    kind = 'Stabilizing';
    reason = `${why}: ${raw} replicas recommended, stabilisation window keeps ${current}.`;
  } else {
    kind = 'Hold';
    reason = `${why}: ${current} replicas fit.`;
  }
  return { ...base, desiredReplicas: desired, kind, reason, state };
}
