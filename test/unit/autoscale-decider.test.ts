import { describe, expect, it } from 'vitest';
import { AutoscalingSpecSchema, type AutoscalingSpec } from '../../operator/api/realtimecluster.js';
import {
  decide,
  EMPTY_STATE,
  type Decision,
  type DeciderState,
  type PodSample,
} from '../../operator/autoscale/decider.js';

const spec = (over: Record<string, unknown> = {}): AutoscalingSpec =>
  AutoscalingSpecSchema.parse({ enabled: true, minReplicas: 1, maxReplicas: 20, ...over });

/** `replicas` pods sharing `total` connections evenly. */
const even = (replicas: number, total: number, lagMs?: number): PodSample[] =>
  Array.from({ length: replicas }, (_, i) => ({
    pod: `p${i}`,
    connections: Math.floor(total / replicas) + (i < total % replicas ? 1 : 0),
    lagMs,
  }));

/** Runs the decider every `stepS` seconds over a load curve, applying each decision. */
function simulate(
  s: AutoscalingSpec,
  start: number,
  load: (t: number) => number,
  seconds: number,
  stepS = 15,
): { replicas: number[]; decisions: Decision[] } {
  let state: DeciderState = EMPTY_STATE;
  let current = start;
  const replicas: number[] = [];
  const decisions: Decision[] = [];
  for (let t = 0; t <= seconds; t += stepS) {
    const d = decide({
      now: t * 1000,
      currentReplicas: current,
      pods: even(current, load(t)),
      spec: s,
      state,
    });
    state = d.state;
    current = d.desiredReplicas;
    replicas.push(current);
    decisions.push(d);
  }
  return { replicas, decisions };
}

const changes = (r: number[]): number => r.filter((v, i) => i > 0 && v !== r[i - 1]).length;

describe('autoscaling spec', () => {
  it('defaults like a HorizontalPodAutoscaler', () => {
    const s = AutoscalingSpecSchema.parse({});
    expect(s.enabled).toBe(false);
    expect(s.behavior.scaleUp).toEqual({
      stabilizationWindowSeconds: 0,
      maxPodsPerPeriod: 4,
      maxPercentPerPeriod: 100,
      periodSeconds: 15,
    });
    expect(s.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
    expect(s.tolerancePercent).toBe(10);
  });

  it('refuses minReplicas above maxReplicas with one sentence on the field', () => {
    const r = AutoscalingSpecSchema.safeParse({ minReplicas: 5, maxReplicas: 3 });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['minReplicas', 'minReplicas must not exceed maxReplicas'],
    ]);
  });
});

describe('decide', () => {
  it('scales up to ceil(connections / target)', () => {
    const d = decide({
      now: 0,
      currentReplicas: 2,
      pods: even(2, 5500),
      spec: spec(),
      state: EMPTY_STATE,
    });
    expect(d.desiredReplicas).toBe(6);
    expect(d.kind).toBe('ScaleUp');
    expect(d.reason).toBe(
      '5500 connections on 2 sampled pods, target 1000 per pod: 2 -> 6 replicas.',
    );
    expect(d.connections).toBe(5500);
  });

  it('holds within the tolerance band', () => {
    const d = decide({
      now: 0,
      currentReplicas: 4,
      pods: even(4, 4350),
      spec: spec(),
      state: EMPTY_STATE,
    });
    expect(d.desiredReplicas).toBe(4);
    expect(d.kind).toBe('Hold');
  });

  it('limits a scale-up step to max(pods, percent) per period and counts earlier steps', () => {
    const s = spec({
      maxReplicas: 100,
      behavior: { scaleUp: { maxPodsPerPeriod: 2, maxPercentPerPeriod: 50 } },
    });
    const first = decide({
      now: 0,
      currentReplicas: 4,
      pods: even(4, 40_000),
      spec: s,
      state: EMPTY_STATE,
    });
    // 50% of 4 = 2, 2 pods: the larger is 2.
    expect(first.desiredReplicas).toBe(6);
    expect(first.reason).toContain('(step limit; 40 wanted)');
    // 5 s later, inside the same 15 s period: nothing more may be added.
    const second = decide({
      now: 5000,
      currentReplicas: 6,
      pods: even(6, 40_000),
      spec: s,
      state: first.state,
    });
    expect(second.desiredReplicas).toBe(6);
    expect(second.kind).toBe('RateLimited');
    // A new period: 50% of 6 = 3.
    const third = decide({
      now: 16_000,
      currentReplicas: 6,
      pods: even(6, 40_000),
      spec: s,
      state: second.state,
    });
    expect(third.desiredReplicas).toBe(9);
  });

  it('waits out the scale-down window, then removes pods no faster than the step limit', () => {
    const s = spec({
      behavior: {
        scaleDown: { stabilizationWindowSeconds: 60, maxPodsPerPeriod: 1, maxPercentPerPeriod: 10 },
      },
    });
    const { replicas, decisions } = simulate(s, 8, (t) => (t < 30 ? 8000 : 1000), 300);
    // Load drops at t=30; the last high recommendation (t=15) holds 8 until t=75, then one pod
    // per 15 s period.
    expect(replicas.slice(0, 6)).toEqual([8, 8, 8, 8, 8, 8]);
    expect(decisions[3]?.kind).toBe('Stabilizing');
    expect(replicas[6]).toBe(7);
    expect(replicas[7]).toBe(6);
    expect(replicas.at(-1)).toBe(1);
    expect(
      decisions
        .filter((d) => d.kind === 'ScaleDown')
        .every((d, i, all) => i === 0 || d !== all[i - 1]),
    ).toBe(true);
  });

  it('does not flap on noisy load around a threshold', () => {
    // ±25% noise around 3000 connections, target 1000: the raw recommendation jumps between 3 and 4.
    let seed = 7;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const { replicas } = simulate(spec(), 3, () => Math.round(3000 * (0.75 + rnd() * 0.5)), 3600);
    // Up at the first spike, then held by the 300 s down window: at most a handful of changes
    // in an hour, never a change back within the window.
    expect(changes(replicas)).toBeLessThanOrEqual(4);
    for (let i = 1; i < replicas.length; i++) {
      if ((replicas[i] ?? 0) < (replicas[i - 1] ?? 0)) {
        const lastUp = replicas
          .slice(0, i)
          .findLastIndex((v, j) => j > 0 && v > (replicas[j - 1] ?? 0));
        if (lastUp >= 0) expect((i - lastUp) * 15).toBeGreaterThanOrEqual(300);
      }
    }
  });

  it('follows a ramp without stepping back', () => {
    const { replicas } = simulate(spec(), 1, (t) => Math.min(6000, 1000 + t * 20), 600);
    expect(replicas.at(-1)).toBe(6);
    for (let i = 1; i < replicas.length; i++) {
      expect(replicas[i]).toBeGreaterThanOrEqual(replicas[i - 1] ?? 0);
    }
  });

  it('clamps to [min, max] whatever the load', () => {
    const s = spec({ minReplicas: 2, maxReplicas: 5 });
    expect(
      decide({ now: 0, currentReplicas: 5, pods: even(5, 100_000), spec: s, state: EMPTY_STATE })
        .desiredReplicas,
    ).toBe(5);
    const low = simulate(s, 2, () => 0, 900);
    expect(new Set(low.replicas)).toEqual(new Set([2]));
  });

  it('brings a hand-set out-of-range replica count back into range at once and says so', () => {
    const s = spec({ minReplicas: 2, maxReplicas: 5 });
    const high = decide({
      now: 0,
      currentReplicas: 9,
      pods: even(9, 100),
      spec: s,
      state: EMPTY_STATE,
    });
    expect(high).toMatchObject({ desiredReplicas: 5, kind: 'AboveMaximum' });
    expect(high.reason).toBe('spec.replicas 9 is above maxReplicas; set to 5.');
    const low = decide({ now: 0, currentReplicas: 0, pods: [], spec: s, state: EMPTY_STATE });
    expect(low).toMatchObject({ desiredReplicas: 2, kind: 'BelowMinimum' });
  });

  it('keeps the replicas when no pod answers', () => {
    const pods = [{ pod: 'a' }, { pod: 'b' }];
    const d = decide({ now: 0, currentReplicas: 2, pods, spec: spec(), state: EMPTY_STATE });
    expect(d).toMatchObject({ desiredReplicas: 2, kind: 'NoMetrics', sampledPods: 0 });
  });

  it('never scales down while a pod did not answer, but still scales up', () => {
    const s = spec({ behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } });
    const pods: PodSample[] = [...even(3, 300), { pod: 'silent' }];
    const d = decide({ now: 0, currentReplicas: 4, pods, spec: s, state: EMPTY_STATE });
    expect(d.desiredReplicas).toBe(4);
    expect(d.reason).toContain('1 pod(s) did not answer, so no scale-down');
    const upPods: PodSample[] = [...even(3, 9000), { pod: 'silent' }];
    expect(
      decide({ now: 0, currentReplicas: 4, pods: upPods, spec: s, state: EMPTY_STATE })
        .desiredReplicas,
    ).toBe(8);
  });

  it('scales up on event-loop lag over the target, never down on low lag', () => {
    const s = spec({ targetEventLoopLagMs: 50 });
    const hot = decide({
      now: 0,
      currentReplicas: 4,
      pods: even(4, 4000, 100),
      spec: s,
      state: EMPTY_STATE,
    });
    expect(hot.desiredReplicas).toBe(8);
    expect(hot.reason).toBe('mean event-loop lag 100.0 ms over the target 50 ms: 4 -> 8 replicas.');
    const cool = decide({
      now: 0,
      currentReplicas: 4,
      pods: even(4, 4000, 1),
      spec: s,
      state: EMPTY_STATE,
    });
    expect(cool.desiredReplicas).toBe(4);
  });

  it('forgets recommendations older than the longest window', () => {
    let state: DeciderState = EMPTY_STATE;
    for (let t = 0; t < 3600; t += 15) {
      state = decide({
        now: t * 1000,
        currentReplicas: 3,
        pods: even(3, 3000),
        spec: spec(),
        state,
      }).state;
    }
    expect(state.recommendations.length).toBeLessThanOrEqual(21);
  });
});
