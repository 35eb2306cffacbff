import type { RealtimeClusterStatus } from '../api/realtimecluster.js';
import type { AutopilotObservation } from '../autoscale/loop.js';
import { setConditions } from './conditions.js';

/**
 * Merges what the autopilot observed into the status the reconciler writes, so status has one
 * writer. Without an observation (autopilot off, or no pod answered yet) the status is untouched:
 * conditions the autopilot set before stay as they were until it observes again.
 */
export function withAutopilot(
  status: RealtimeClusterStatus,
  observed: AutopilotObservation | undefined,
  now: string,
  generation: number | undefined,
): RealtimeClusterStatus {
  if (!observed) return status;
  const out: RealtimeClusterStatus = {
    ...status,
    conditions: setConditions(status.conditions, observed.abnormalities, now, generation),
  };
  if (observed.autoscaling) out.autoscaling = observed.autoscaling;
  return out;
}
