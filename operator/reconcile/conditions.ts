import type { Condition } from '../api/realtimecluster.js';

export type ConditionType =
  | 'Ready'
  | 'Progressing'
  | 'Degraded'
  | 'RedisCluster'
  // Set by the autopilot (operator/autoscale/abnormal.ts): True while the trouble lasts.
  | 'EventLoopLagging'
  | 'PublishLoss'
  | 'ShardWithoutReplica'
  | 'ConnectionsSkewed'
  | 'GatewayConfigRejected';

export interface ConditionInput {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/**
 * Returns the conditions with `next` applied. lastTransitionTime moves only when the status
 * flips, as the Kubernetes API conventions require, so an unchanged condition compares equal
 * and a no-op reconcile writes no status.
 */
export function setCondition(
  existing: readonly Condition[] | undefined,
  next: ConditionInput,
  now: string,
  observedGeneration?: number,
): Condition[] {
  const list = [...(existing ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const condition: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason,
    message: next.message,
    lastTransitionTime:
      previous && previous.status === next.status ? previous.lastTransitionTime : now,
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
  };
  if (index >= 0) list[index] = condition;
  else list.push(condition);
  return list;
}

/** Applies several conditions in order (see setCondition). */
export function setConditions(
  existing: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  now: string,
  observedGeneration?: number,
): Condition[] {
  let list = [...(existing ?? [])];
  for (const c of next) list = setCondition(list, c, now, observedGeneration);
  const order: string[] = ['Ready', 'Progressing', 'Degraded'];
  // A stable order keeps equal condition sets byte-identical.
  return list.sort((a, b) => rank(order, a.type) - rank(order, b.type));
}

function rank(order: string[], type: string): number {
  const i = order.indexOf(type);
  return i === -1 ? order.length : i;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: ConditionType,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
