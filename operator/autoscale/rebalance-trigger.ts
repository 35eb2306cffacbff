import type { RealtimeCluster } from '../api/realtimecluster.js';

/**
 * When to ask the servers to rebalance: the ready server set changed since the last rebalance
 * (or since the operator started watching), it has stayed the same for `stableRuns` runs so the
 * gateway has surely reloaded with it, and every wanted server is ready (no scale in progress).
 * Pure: the loop keeps the state.
 */
export interface RebalanceState {
  /** The set the servers were last balanced for ('' before any). */
  balancedFor: string;
  /** The set seen in the last runs and for how many runs in a row. */
  seen: string;
  runs: number;
}

export const INITIAL_REBALANCE_STATE: RebalanceState = { balancedFor: '', seen: '', runs: 0 };

export function rebalanceDue(
  cluster: RealtimeCluster,
  servers: readonly string[],
  wanted: number,
  state: RebalanceState,
  stableRuns = 2,
): { due: boolean; state: RebalanceState } {
  const key = [...servers].sort().join(',');
  const runs = key === state.seen ? state.runs + 1 : 1;
  const next: RebalanceState = { ...state, seen: key, runs };
  const g = cluster.spec.gateway;
  const applies =
    cluster.spec.rebalance.enabled && g.mode === 'managed' && g.balance === 'consistent-hash';
  // The first set seen is the baseline: an operator restart must not shed anyone.
  if (state.balancedFor === '' && state.seen === '')
    return { due: false, state: { ...next, balancedFor: key } };
  const due =
    applies &&
    servers.length > 1 &&
    servers.length === wanted &&
    runs >= stableRuns &&
    key !== state.balancedFor;
  return { due, state: due ? { ...next, balancedFor: key } : next };
}
