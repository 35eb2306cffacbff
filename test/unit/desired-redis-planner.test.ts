import { describe, expect, it } from 'vitest';
import {
  MAX_SLOTS_PER_MOVE,
  PINNED_SLOT,
  planRedisCluster,
  type RedisPlan,
  type RedisStep,
} from '../../operator/desired/redis-planner.js';
import {
  evenSlotCount,
  evenSlotRange,
  parseClusterNodes,
  SLOT_COUNT,
  toRanges,
} from '../../operator/desired/redis-nodes.js';
import { podRef, range, SimCluster } from './redis-sim.js';

/** Runs plan -> apply -> gossip until the planner says stable; returns every step taken. */
function converge(
  sim: SimCluster,
  opts: {
    maxRounds?: number;
    onRound?: (plan: RedisPlan) => void;
    onShrink?: (pods: string[]) => void;
  } = {},
): RedisStep[] {
  const taken: RedisStep[] = [];
  // Every shard that has pods has a StatefulSet, as the reconciler lists them.
  let retained = [...new Set([...sim.byPod.values()].map((n) => n.pod.shard))].filter(
    (s) => s >= sim.layout.shards,
  );
  for (let round = 0; round < (opts.maxRounds ?? 200); round++) {
    sim.gossip();
    const shards = [...new Set([...range(sim.layout.shards), ...retained])];
    sim.ensurePods(range(sim.layout.shards));
    const plan = planRedisCluster(sim.layout, sim.views(shards));
    opts.onRound?.(plan);
    // StatefulSets of removed shards go once the planner no longer retains them.
    const released = retained.filter((x) => !plan.retainedShards.includes(x));
    for (const s of released) {
      for (const [pod, n] of sim.byPod) {
        if (n.pod.shard === s) {
          n.alive = false;
          sim.byPod.delete(pod);
        }
      }
    }
    retained = plan.retainedShards;
    // Each desired shard's StatefulSet has replicasPerShard + 1 pods, or what the planner
    // retains; scaling down removes the highest ordinals, which must never be a master.
    const shrunk: string[] = [];
    for (const s of range(sim.layout.shards)) {
      const size = Math.max(
        sim.layout.replicasPerShard + 1,
        plan.retainedNodes.find((r) => r.shard === s)?.nodes ?? 0,
      );
      for (const [pod, n] of sim.byPod) {
        if (
          n.pod.shard === s &&
          n.pod.ordinal >= size &&
          n.master === undefined &&
          n.slots.size > 0
        )
          throw new Error(`the StatefulSet of shard ${s} removed its master ${pod}`);
      }
      shrunk.push(...sim.scaleShard(s, size));
    }
    opts.onShrink?.(shrunk);
    if (plan.phase === 'stable' && released.length === 0 && shrunk.length === 0) return taken;
    if (plan.steps.length === 0 && released.length === 0 && shrunk.length === 0)
      throw new Error(`stuck: ${plan.reason}`);
    for (const st of plan.steps) sim.apply(st);
    taken.push(...plan.steps);
  }
  throw new Error('did not converge');
}

function plan(sim: SimCluster, shards = range(sim.layout.shards)): RedisPlan {
  sim.gossip();
  return planRedisCluster(sim.layout, sim.views(shards));
}

function slotsOf(sim: SimCluster, shard: number): number {
  return [...sim.byPod.values()]
    .filter((n) => n.alive && n.pod.shard === shard)
    .reduce((k, n) => k + n.slots.size, 0);
}

function formed(shards: number, replicasPerShard: number): SimCluster {
  const sim = new SimCluster({ shards, replicasPerShard });
  converge(sim);
  return sim;
}

describe('Redis Cluster planner', () => {
  it('forms a fresh 2 x 2 cluster: meet, even slots on ordinal 0, replicas attached', () => {
    const sim = new SimCluster({ shards: 2, replicasPerShard: 1 });
    const first = planRedisCluster(sim.layout, sim.views([0, 1]));
    expect(first.phase).toBe('forming');
    expect(first.steps).toEqual([
      expect.objectContaining({ kind: 'meet', via: 'demo-redis-0-0', target: 'demo-redis-0-1' }),
      expect.objectContaining({ kind: 'meet', via: 'demo-redis-0-0', target: 'demo-redis-1-0' }),
      expect.objectContaining({ kind: 'meet', via: 'demo-redis-0-0', target: 'demo-redis-1-1' }),
    ]);
    const steps = converge(sim);
    expect(steps.map((s) => s.kind)).toEqual([
      'meet',
      'meet',
      'meet',
      'addSlots',
      'addSlots',
      'replicate',
      'replicate',
    ]);
    expect(steps[3]).toEqual({ kind: 'addSlots', pod: 'demo-redis-0-0', ranges: [[0, 8191]] });
    expect(steps[4]).toEqual({ kind: 'addSlots', pod: 'demo-redis-1-0', ranges: [[8192, 16383]] });
    const done = plan(sim);
    expect(done).toMatchObject({ phase: 'stable', steps: [], slotsCovered: SLOT_COUNT });
    expect(done.shards).toEqual([
      { index: 0, master: 'demo-redis-0-0', slots: 8192, replicas: 1, replicasInSync: 1 },
      { index: 1, master: 'demo-redis-1-0', slots: 8192, replicas: 1, replicasInSync: 1 },
    ]);
  });

  it('waits for every shard master before assigning the slots of a fresh cluster', () => {
    const sim = new SimCluster({ shards: 2, replicasPerShard: 0 });
    sim.kill('demo-redis-1-0');
    const p = plan(sim);
    expect(p).toMatchObject({ phase: 'waiting', steps: [] });
    expect(p.reason).toBe('Waiting for a master of shard 1 to answer.');
  });

  it('reshards 2 -> 3 in bounded moves, leaves slot 13868 in place, and no slot is ever unowned', () => {
    const sim = formed(2, 1);
    const pinnedOwner = sim.owner(PINNED_SLOT)!.pod.shard;
    sim.layout = { shards: 3, replicasPerShard: 1 };
    const steps = converge(sim, {
      onRound: () => {
        for (let s = 0; s < SLOT_COUNT; s += 97) expect(sim.owner(s)).toBeDefined();
      },
    });
    const moves = steps.filter((s) => s.kind === 'moveSlots');
    expect(moves.length).toBeGreaterThan(0);
    for (const m of moves) {
      expect(m.slots.length).toBeLessThanOrEqual(MAX_SLOTS_PER_MOVE);
      expect(m.slots).not.toContain(PINNED_SLOT);
      expect(m.to).toBe('demo-redis-2-0');
    }
    expect(range(3).map((s) => slotsOf(sim, s))).toEqual(range(3).map((s) => evenSlotCount(s, 3)));
    expect(sim.owner(PINNED_SLOT)!.pod.shard).toBe(pinnedOwner);
    expect(plan(sim).shards.map((s) => s.replicasInSync)).toEqual([1, 1, 1]);
  });

  it('reshards 3 -> 2: empties the removed shard, moving slot 13868 last and alone, then lets it go', () => {
    const sim = formed(3, 1);
    // Put the pinned slot on the shard that will be removed.
    const holder = sim.owner(PINNED_SLOT)!;
    const s2 = sim.byPod.get('demo-redis-2-0')!;
    holder.slots.delete(PINNED_SLOT);
    s2.slots.add(PINNED_SLOT);
    sim.layout = { shards: 2, replicasPerShard: 1 };
    const retainedSeen: number[][] = [];
    const steps = converge(sim, { onRound: (p) => retainedSeen.push(p.retainedShards) });
    const moves = steps.filter((s) => s.kind === 'moveSlots');
    expect(moves.every((m) => m.from.startsWith('demo-redis-2-'))).toBe(true);
    expect(moves[moves.length - 1]!.slots).toEqual([PINNED_SLOT]);
    expect(moves.slice(0, -1).every((m) => !m.slots.includes(PINNED_SLOT))).toBe(true);
    expect(retainedSeen[0]).toEqual([2]);
    expect(retainedSeen[retainedSeen.length - 1]).toEqual([]);
    expect([slotsOf(sim, 0), slotsOf(sim, 1)]).toEqual([8192, 8192]);
    // The removed shard's ids were forgotten once its pods were gone.
    const p = plan(sim);
    expect(p.shards.map((s) => s.index)).toEqual([0, 1]);
    const known = sim.views([0, 1])[0]!.nodes!.map((n) => n.id);
    expect(known).toHaveLength(4);
  });

  it('does not fight an automatic failover, then forgets the dead id and re-attaches the new pod', () => {
    const sim = formed(3, 1);
    const oldMaster = sim.byPod.get('demo-redis-0-0')!;
    // The master's pod is gone and its replica not promoted yet: 2 of 3 masters can still vote.
    oldMaster.alive = false;
    const during = plan(sim);
    expect(during.phase).toBe('waiting');
    expect(during.steps).toEqual([]);
    expect(during.reason).toMatch(/^Waiting for Redis to fail over from master/);
    // Redis promotes the replica; the pod comes back empty with a new id.
    oldMaster.alive = true;
    sim.kill('demo-redis-0-0');
    sim.start(oldMaster.pod);
    const steps = converge(sim);
    expect(steps.map((s) => s.kind)).toEqual(['meet', 'forget', 'replicate']);
    expect(steps[1]).toEqual({ kind: 'forget', ids: [oldMaster.id] });
    expect(plan(sim).shards[0]).toEqual({
      index: 0,
      master: 'demo-redis-0-1',
      slots: 5462,
      replicas: 1,
      replicasInSync: 1,
    });
  });

  it('leaves the heir of a deleted master alone when the pod comes back empty before the election', () => {
    const sim = formed(3, 1);
    const oldMaster = sim.byPod.get('demo-redis-0-0')!;
    const heir = sim.byPod.get('demo-redis-0-1')!;
    // A deleted pod is back (new IP, new id, no slots) within a second or two, before the node
    // timeout lets Redis elect the replica.
    oldMaster.alive = false;
    const fresh = sim.start(oldMaster.pod);
    for (let round = 0; round < 5; round++) {
      const p = plan(sim);
      expect(p.steps.filter((st) => st.kind === 'replicate' && st.pod === heir.pod.pod)).toEqual(
        [],
      );
      for (const st of p.steps) sim.apply(st);
    }
    expect(heir.master).toBe(oldMaster.id);
    // Redis elects the heir; then the empty pod joins it as a replica and the dead id goes.
    sim.promote(heir);
    converge(sim);
    expect(fresh.master).toBe(heir.id);
    expect(plan(sim).shards[0]).toMatchObject({ master: 'demo-redis-0-1', slots: 5462 });
  });

  it('promotes a replica without a vote when too few masters are left to elect one', () => {
    const sim = formed(2, 1);
    sim.byPod.get('demo-redis-1-0')!.alive = false;
    const p = plan(sim);
    expect(p.phase).toBe('healing');
    expect(p.steps).toEqual([{ kind: 'failover', pod: 'demo-redis-1-1', takeover: true }]);
    expect(p.reason).toBe(
      'Promoting 1 replica(s) of failed master(s) without a vote: 1 of 2 masters are up, fewer than an election needs.',
    );
  });

  it('re-covers the slots of a master that had no replica and came back empty', () => {
    const sim = formed(2, 0);
    const old = sim.byPod.get('demo-redis-1-0')!;
    sim.kill(old.pod.pod);
    expect(plan(sim).phase).toBe('waiting');
    sim.start(old.pod);
    const steps = converge(sim);
    expect(steps.map((s) => s.kind)).toEqual(['meet', 'forget', 'addSlots']);
    expect(steps[2]).toEqual({ kind: 'addSlots', pod: 'demo-redis-1-0', ranges: [[8192, 16383]] });
  });

  it('finishes a slot move interrupted between IMPORTING and NODE, and undoes one whose peer is gone', () => {
    const sim = formed(2, 0);
    const a = sim.byPod.get('demo-redis-0-0')!;
    const b = sim.byPod.get('demo-redis-1-0')!;
    a.migrating.set(5, b.id);
    b.importing.set(5, a.id);
    b.importing.set(9000, 'f'.repeat(40));
    const p = plan(sim);
    expect(p.phase).toBe('resharding');
    expect(p.steps).toEqual([
      {
        kind: 'moveSlots',
        from: 'demo-redis-0-0',
        fromId: a.id,
        to: 'demo-redis-1-0',
        toId: b.id,
        slots: [5],
      },
      { kind: 'stableSlot', pod: 'demo-redis-1-0', slot: 9000 },
    ]);
  });

  it('rolls a template change one pod at a time: replicas, then a failover, then the old master', () => {
    const sim = formed(2, 1);
    for (const n of sim.byPod.values()) n.outdated = true;
    const kinds: string[] = [];
    const steps = converge(sim, {
      onRound: (p) => {
        // Never more than one restart or failover in flight, and every slot always served.
        expect(
          p.steps.filter((s) => s.kind === 'deletePod' || s.kind === 'failover').length,
        ).toBeLessThanOrEqual(1);
        if (p.phase === 'rolling') kinds.push(p.steps[0]!.kind);
      },
    });
    expect(kinds).toEqual([
      'deletePod',
      'deletePod',
      'failover',
      'deletePod',
      'failover',
      'deletePod',
    ]);
    expect(steps.filter((s) => s.kind === 'deletePod').map((s) => s.pod)).toEqual([
      'demo-redis-0-1',
      'demo-redis-1-1',
      'demo-redis-0-0',
      'demo-redis-1-0',
    ]);
    expect([...sim.byPod.values()].every((n) => !n.outdated)).toBe(true);
    expect(plan(sim).slotsCovered).toBe(SLOT_COUNT);
  });

  it('shrinks replicasPerShard 2 -> 1 without removing a master: fails over onto a kept replica first', () => {
    const sim = formed(2, 2);
    // Redis failed shard 0 over to its highest ordinal earlier: the pod a StatefulSet removes first.
    sim.apply({ kind: 'failover', pod: 'demo-redis-0-2' });
    sim.layout = { shards: 2, replicasPerShard: 1 };
    const first = plan(sim);
    expect(first.retainedNodes).toEqual([{ shard: 0, nodes: 3 }]);
    expect(first.phase).toBe('healing');
    expect(first.reason).toBe(
      'Failing shard 0 over to demo-redis-0-0: its master demo-redis-0-2 is beyond the 2 node(s) the shard keeps.',
    );
    expect(first.steps).toEqual([{ kind: 'failover', pod: 'demo-redis-0-0' }]);
    const removed: string[] = [];
    const steps = converge(sim, { onShrink: (pods) => removed.push(...pods) });
    expect(steps.filter((s) => s.kind === 'failover')).toEqual([
      { kind: 'failover', pod: 'demo-redis-0-0' },
    ]);
    expect(removed.sort()).toEqual(['demo-redis-0-2', 'demo-redis-1-2']);
    // The departed nodes' ids are forgotten, and each shard serves with one replica in sync.
    const forgotten = steps.flatMap((s) => (s.kind === 'forget' ? s.ids : []));
    expect(forgotten).toHaveLength(2);
    const after = plan(sim);
    expect(after.retainedNodes).toEqual([]);
    expect(after.shards.map((s) => [s.master, s.replicas, s.replicasInSync])).toEqual([
      ['demo-redis-0-0', 1, 1],
      ['demo-redis-1-0', 1, 1],
    ]);
    expect(after.slotsCovered).toBe(SLOT_COUNT);
  });

  it('keeps a shrinking shard whole while no kept replica is in sync to take over', () => {
    const sim = formed(1, 2);
    sim.apply({ kind: 'failover', pod: 'demo-redis-0-2' });
    sim.kill('demo-redis-0-1');
    sim.byPod.get('demo-redis-0-0')!.alive = false;
    sim.layout = { shards: 1, replicasPerShard: 1 };
    const p = plan(sim);
    expect(p.retainedNodes).toEqual([{ shard: 0, nodes: 3 }]);
    expect(p.steps.filter((s) => s.kind === 'failover')).toEqual([]);
  });

  it('waits for a restarted replica to sync before the next restart', () => {
    const sim = formed(1, 1);
    for (const n of sim.byPod.values()) n.outdated = true;
    sim.kill('demo-redis-0-1');
    const p = plan(sim);
    expect(p).toMatchObject({ phase: 'waiting', steps: [] });
    expect(p.reason).toBe('Shard 0 has 1 of 2 node(s) up and 0 of 1 replica(s) in sync.');
  });

  it('refuses to merge a pod that belongs to another cluster', () => {
    const sim = formed(1, 0);
    const stray = formed(1, 0);
    const views = [...sim.views([0]), { ...stray.views([0])[0]!, ref: podRef(1, 0) }];
    const p = planRedisCluster({ shards: 2, replicasPerShard: 0 }, views);
    expect(p.phase).toBe('waiting');
    expect(p.reason).toBe(
      'Pod demo-redis-1-0 belongs to another Redis Cluster that holds slots; reset it (CLUSTER RESET) or delete its pod so it can join.',
    );
  });

  it('keeps removed shards when no pod answers, since it cannot tell they are empty', () => {
    const sim = formed(3, 0);
    for (const n of sim.byPod.values()) n.alive = false;
    const p = planRedisCluster({ shards: 2, replicasPerShard: 0 }, sim.views([0, 1, 2]));
    expect(p).toMatchObject({
      phase: 'waiting',
      retainedShards: [2],
      reason: 'No Redis pod answers yet.',
    });
  });
});

describe('CLUSTER NODES parsing', () => {
  it('reads hostnames, flags, slot ranges and open slots as Redis 7.0 prints them', () => {
    const text = [
      '0253dcb37e867691332ae58981944be8de47caf6 127.0.0.1:7101@17101,host7101.example myself,master - 0 0 1 connected 0-5 9 [3->-6e0e5ed14e8450d231b49e4fe2bca3d8bacf1293]',
      '6e0e5ed14e8450d231b49e4fe2bca3d8bacf1293 127.0.0.1:7102@17102,host7102.example slave,fail 0253dcb37e867691332ae58981944be8de47caf6 0 1795981438493 0 disconnected',
      'ffe0000000000000000000000000000000000000 :0@0 master,noaddr - 0 0 0 disconnected',
      '',
    ].join('\n');
    const [a, b, c] = parseClusterNodes(text);
    expect(a).toEqual({
      id: '0253dcb37e867691332ae58981944be8de47caf6',
      ip: '127.0.0.1',
      port: 7101,
      busPort: 17101,
      hostname: 'host7101.example',
      flags: ['myself', 'master'],
      masterId: undefined,
      configEpoch: 1,
      connected: true,
      slots: [
        [0, 5],
        [9, 9],
      ],
      importing: [],
      migrating: [{ slot: 3, to: '6e0e5ed14e8450d231b49e4fe2bca3d8bacf1293' }],
    });
    expect(b).toMatchObject({
      flags: ['slave', 'fail'],
      masterId: '0253dcb37e867691332ae58981944be8de47caf6',
      connected: false,
      slots: [],
    });
    expect(c).toMatchObject({ ip: '', port: 0, hostname: undefined, flags: ['master', 'noaddr'] });
  });

  it('splits 16384 slots evenly and contiguously', () => {
    expect(range(3).map((i) => evenSlotRange(i, 3))).toEqual([
      [0, 5461],
      [5462, 10922],
      [10923, 16383],
    ]);
    expect(toRanges([7, 1, 2, 3, 3])).toEqual([
      [1, 3],
      [7, 7],
    ]);
  });
});
