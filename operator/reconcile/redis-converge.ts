import {
  planRedisCluster,
  type RedisLayout,
  type RedisPlan,
  type RedisPodView,
  type RedisStep,
} from '../desired/redis-planner.js';
import type { ObservedPod, RedisAdmin } from './redis-admin.js';

export interface ConvergeOptions {
  /** Restarts a pod; the planner asks for it only while rolling a template change. */
  deletePod: (pod: string) => Promise<void>;
  /** Give up (returning the last plan) after this long; the caller retries later. */
  timeoutMs: number;
  /** Pause between rounds, so gossip carries the last step to every node. */
  pauseMs?: number;
  onPlan?: (plan: RedisPlan, views: RedisPodView[]) => void;
  /** Pods to observe now (they change while rolling or when removed shards go). */
  pods: () => ObservedPod[];
  /** A step that failed; the next round plans again from what the nodes report. */
  onError?: (step: RedisStep, err: unknown) => void;
  /** True to stop early (the caller is shutting down). */
  stopped?: () => boolean;
}

/**
 * Observe, plan, act, until the planner reports a stable cluster or time runs out. For `up`
 * and tests; the operator takes one step per reconcile instead and requeues.
 */
export async function convergeRedisCluster(
  admin: RedisAdmin,
  layout: RedisLayout,
  opts: ConvergeOptions,
): Promise<RedisPlan> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const views = await admin.observe(opts.pods());
    const plan = planRedisCluster(layout, views);
    opts.onPlan?.(plan, views);
    if (plan.phase === 'stable' || Date.now() > deadline || opts.stopped?.()) return plan;
    const byPod = new Map(views.map((v) => [v.ref.pod, v]));
    for (const step of plan.steps) {
      try {
        await admin.execute(step, byPod, opts.deletePod);
      } catch (err) {
        // Level-based: the next round observes what happened and plans again.
        opts.onError?.(step, err);
      }
    }
    await new Promise((r) => setTimeout(r, plan.steps.length > 0 ? (opts.pauseMs ?? 200) : 500));
  }
}
