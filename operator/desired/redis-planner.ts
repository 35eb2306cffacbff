import type { RedisPodRef } from './redis.js';
import {
  evenSlotCount,
  evenSlotRange,
  expandSlots,
  hasFlag,
  isFailing,
  isMaster,
  SLOT_COUNT,
  slotCount,
  toRanges,
  type ClusterNodeLine,
} from './redis-nodes.js';

/**
 * The Redis Cluster planner: what the pods report in, the next small safe step out. Pure and
 * level-based: it keeps no memory between calls, so an operator that crashed halfway through a
 * step simply observes again and finishes or undoes what it finds (a slot left importing or
 * migrating is the first thing fixed). Steps come in priority order and one kind at a time:
 * join nodes, forget dead ids, close open slots, cover slots, attach replicas, move slots, roll
 * outdated pods. Whatever Redis does on its own (failover) is waited for, never fought.
 */

/** socket.io#/# hashes here; every server's request channel lives on it, so it moves last. */
export const PINNED_SLOT = 13868;
/** Slots moved by one step: small enough to re-plan often, large enough to reshard in seconds. */
export const MAX_SLOTS_PER_MOVE = 1024;

export interface RedisPodView {
  ref: RedisPodRef;
  /** Where other nodes reach this one (pod IP; loopback locally): CLUSTER MEET takes no names. */
  ip: string | undefined;
  /** The pod's `CLUSTER NODES`, or undefined when it did not answer. */
  nodes: ClusterNodeLine[] | undefined;
  /** `cluster_state` from the pod's CLUSTER INFO. */
  clusterState?: string | undefined;
  /** For a replica: its link to the master is up (INFO replication master_link_status). */
  masterLinkUp: boolean;
  /** The pod runs an older template than its StatefulSet asks for. */
  outdated: boolean;
}

export interface RedisLayout {
  shards: number;
  replicasPerShard: number;
}

export type RedisStep =
  | { kind: 'meet'; via: string; target: string; ip: string; port: number; busPort: number }
  | { kind: 'forget'; ids: string[] }
  | { kind: 'stableSlot'; pod: string; slot: number }
  | { kind: 'addSlots'; pod: string; ranges: [number, number][] }
  | { kind: 'replicate'; pod: string; masterId: string }
  | { kind: 'moveSlots'; from: string; to: string; toId: string; fromId: string; slots: number[] }
  | { kind: 'failover'; pod: string; takeover?: boolean }
  | { kind: 'deletePod'; pod: string };

export type RedisPhase = 'forming' | 'healing' | 'resharding' | 'rolling' | 'stable' | 'waiting';

export interface RedisShardStatus {
  index: number;
  master?: string;
  slots: number;
  replicas: number;
  replicasInSync: number;
  retiring?: boolean;
}

export interface RedisPlan {
  phase: RedisPhase;
  /** One sentence: what the steps do, or what the planner waits for. */
  reason: string;
  steps: RedisStep[];
  shards: RedisShardStatus[];
  clusterState: string | undefined;
  /** Slots served by a master that is not failing. */
  slotsCovered: number;
  /** Removed shards that still hold slots (or cannot be seen): their StatefulSets stay. */
  retainedShards: number[];
  /**
   * Shards whose StatefulSet must keep more pods than replicasPerShard + 1 asks for, with the
   * count to keep: a StatefulSet scales down from its highest ordinal, and a pod there may be
   * the shard's current master after a failover. It stays until a replica that is kept has
   * taken over (the planner fails over onto it first).
   */
  retainedNodes: { shard: number; nodes: number }[];
}

interface Live {
  view: RedisPodView;
  self: ClusterNodeLine;
}

function selfOf(v: RedisPodView): ClusterNodeLine | undefined {
  return v.nodes?.find((n) => hasFlag(n, 'myself'));
}

function byRef(a: RedisPodRef, b: RedisPodRef): number {
  return a.shard - b.shard || a.ordinal - b.ordinal;
}

function assignedSlots(nodes: ClusterNodeLine[]): number {
  return nodes.filter(isMaster).reduce((n, m) => n + slotCount(m.slots), 0);
}

export function planRedisCluster(layout: RedisLayout, pods: RedisPodView[]): RedisPlan {
  const live: Live[] = [];
  for (const view of [...pods].sort((a, b) => byRef(a.ref, b.ref))) {
    const self = selfOf(view);
    if (self) live.push({ view, self });
  }
  const shardsSeen = [...new Set(pods.map((p) => p.ref.shard))].sort((a, b) => a - b);
  const base = {
    shards: [] as RedisShardStatus[],
    clusterState: undefined as string | undefined,
    slotsCovered: 0,
  };
  if (live.length === 0) {
    // Nothing answers, so nothing can be known to be safe to remove: keep every pod there is.
    const retainedNodes = shardsSeen
      .filter((s) => s < layout.shards)
      .map((shard) => ({
        shard,
        nodes: Math.max(...pods.filter((p) => p.ref.shard === shard).map((p) => p.ref.ordinal + 1)),
      }))
      .filter((r) => r.nodes > layout.replicasPerShard + 1);
    return {
      ...base,
      phase: 'waiting',
      reason: 'No Redis pod answers yet.',
      steps: [],
      retainedShards: shardsSeen.filter((s) => s >= layout.shards),
      retainedNodes,
    };
  }

  // The anchor's view is the cluster as the operator sees it: the node that knows the most
  // assigned slots, then the most nodes, then the lowest shard and ordinal (stable choice).
  const anchor = [...live].sort(
    (a, b) =>
      assignedSlots(b.view.nodes!) - assignedSlots(a.view.nodes!) ||
      b.view.nodes!.length - a.view.nodes!.length ||
      byRef(a.view.ref, b.view.ref),
  )[0]!;
  const view = anchor.view.nodes!;
  const inView = new Map(view.map((n) => [n.id, n]));
  const liveById = new Map(live.map((l) => [l.self.id, l]));

  /** The pod a node id belongs to: by its own answer, else by the name it announced. */
  const podOf = (n: ClusterNodeLine): RedisPodRef | undefined => {
    const l = liveById.get(n.id);
    if (l) return l.view.ref;
    return pods.find(
      (p) =>
        p.ref.port === n.port &&
        (n.hostname !== undefined ? n.hostname === p.ref.host : n.ip === p.ref.host),
    )?.ref;
  };

  const masters = view.filter(isMaster);
  const owner = new Array<string | undefined>(SLOT_COUNT).fill(undefined);
  for (const m of masters) for (const s of expandSlots(m.slots)) owner[s] = m.id;
  // Each live master is the authority on its own slots: the anchor may not have heard yet
  // of slots assigned a moment ago, and must not hand them out twice.
  for (const l of live) {
    if (isMaster(l.self)) for (const s of expandSlots(l.self.slots)) owner[s] = l.self.id;
  }
  const covered = owner.filter((id) => {
    const n = id === undefined ? undefined : (inView.get(id) ?? liveById.get(id)?.self);
    return n !== undefined && !isFailing(n);
  }).length;

  // Per shard: its master pod (the one holding slots, else the lowest-ordinal empty master).
  const shardIdx = [...new Set([...shardsSeen, ...range(layout.shards)])].sort((a, b) => a - b);
  const shardMaster = new Map<number, Live>();
  for (const s of shardIdx) {
    const mine = live.filter((l) => l.view.ref.shard === s && isMaster(l.self));
    const holding = mine
      .filter((l) => slotCount(l.self.slots) > 0)
      .sort((a, b) => slotCount(b.self.slots) - slotCount(a.self.slots))[0];
    const m = holding ?? mine.find((l) => !isFailing(inView.get(l.self.id) ?? l.self));
    if (m) shardMaster.set(s, m);
  }
  const slotsOfShard = (s: number): number =>
    masters.filter((m) => podOf(m)?.shard === s).reduce((n, m) => n + slotCount(m.slots), 0);

  const shards: RedisShardStatus[] = shardIdx
    .filter((s) => s < layout.shards || pods.some((p) => p.ref.shard === s))
    .map((s) => {
      const m = shardMaster.get(s);
      const reps = m
        ? live.filter((l) => l.view.ref.shard === s && l.self.masterId === m.self.id)
        : [];
      const st: RedisShardStatus = {
        index: s,
        slots: slotsOfShard(s),
        replicas: reps.length,
        replicasInSync: reps.filter((r) => r.view.masterLinkUp).length,
      };
      if (m) st.master = m.view.ref.pod;
      if (s >= layout.shards) st.retiring = true;
      return st;
    });
  const unknownOwner = masters.some((m) => slotCount(m.slots) > 0 && podOf(m) === undefined);
  const retainedShards = shardIdx.filter(
    (s) =>
      s >= layout.shards &&
      pods.some((p) => p.ref.shard === s) &&
      (slotsOfShard(s) > 0 ||
        unknownOwner ||
        live.some((l) => l.view.ref.shard === s && slotCount(l.self.slots) > 0)),
  );
  // A pod beyond replicasPerShard that is a master with slots (as the nodes report it) is
  // kept, with every lower ordinal, until the failover below moved its slots to a kept replica.
  const want = layout.replicasPerShard + 1;
  const keep = new Map<number, number>();
  for (const m of masters) {
    const pod = podOf(m);
    if (!pod || pod.shard >= layout.shards || pod.ordinal < want || slotCount(m.slots) === 0)
      continue;
    keep.set(pod.shard, Math.max(keep.get(pod.shard) ?? want, pod.ordinal + 1));
  }
  const retainedNodes = [...keep]
    .sort(([a], [b]) => a - b)
    .map(([shard, nodes]) => ({ shard, nodes }));
  const out = (phase: RedisPhase, reason: string, steps: RedisStep[] = []): RedisPlan => ({
    phase,
    reason,
    steps,
    shards,
    clusterState: anchor.view.clusterState,
    slotsCovered: covered,
    retainedShards,
    retainedNodes,
  });

  // 1. Join every answering node that the anchor does not know yet.
  const anchorHasSlots = assignedSlots(view) > 0;
  const meets: RedisStep[] = [];
  for (const l of live) {
    if (inView.has(l.self.id)) continue;
    // It already knows the anchor: the handshake is under way, gossip finishes it.
    if (l.view.nodes!.some((n) => n.id === anchor.self.id)) continue;
    if (anchorHasSlots && assignedSlots(l.view.nodes!) > 0) {
      return out(
        'waiting',
        `Pod ${l.view.ref.pod} belongs to another Redis Cluster that holds slots; reset it (CLUSTER RESET) or delete its pod so it can join.`,
      );
    }
    if (l.view.ip === undefined) continue;
    meets.push({
      kind: 'meet',
      via: anchor.view.ref.pod,
      target: l.view.ref.pod,
      ip: l.view.ip,
      port: l.self.port || l.view.ref.port,
      busPort: l.self.busPort || l.view.ref.port + 10000,
    });
  }
  if (meets.length > 0)
    return out('forming', `Joining ${meets.length} node(s) to the cluster.`, meets);

  // 2. A failing master whose replica Redis cannot elect: an election needs the votes of a
  // majority of the masters that serve slots, which one or two masters lose with one of them.
  // Then the replica takes over without a vote. With a quorum left, Redis fails over itself.
  const voters = masters.filter((m) => slotCount(m.slots) > 0);
  const quorum = Math.floor(voters.length / 2) + 1;
  const votersUp = voters.filter((m) => !isFailing(m)).length;
  if (votersUp < quorum) {
    const takeovers: RedisStep[] = [];
    for (const m of voters) {
      if (!isFailing(m) || liveById.has(m.id)) continue;
      const heir = live.find((l) => l.self.masterId === m.id && !isMaster(l.self));
      if (heir) takeovers.push({ kind: 'failover', pod: heir.view.ref.pod, takeover: true });
    }
    if (takeovers.length > 0) {
      return out(
        'healing',
        `Promoting ${takeovers.length} replica(s) of failed master(s) without a vote: ${votersUp} of ${voters.length} masters are up, fewer than an election needs.`,
        takeovers,
      );
    }
  }

  // 3. Forget ids that are gone for good: failing, and their pod either no longer exists or
  // answers with a new id (it came back empty). A failed master that still serves slots
  // through a live replica is left to the failover.
  const forget: string[] = [];
  const departing: string[] = [];
  for (const n of view) {
    if (liveById.has(n.id)) continue;
    const pod = podOf(n);
    const replaced = pod === undefined || live.some((l) => l.view.ref.pod === pod.pod);
    if (!replaced) continue;
    if (!isFailing(n)) {
      departing.push(n.id);
      continue;
    }
    if (isMaster(n) && slotCount(n.slots) > 0) {
      const heir = view.some((r) => r.masterId === n.id && !isFailing(r));
      if (heir) continue;
    }
    forget.push(n.id);
  }
  if (forget.length > 0) {
    return out('healing', `Forgetting ${forget.length} node id(s) that are gone.`, [
      { kind: 'forget', ids: forget },
    ]);
  }

  // 4. Close slots left importing or migrating (a move that was interrupted).
  const fixes: RedisStep[] = [];
  const fixed = new Set<number>();
  for (const l of live) {
    for (const m of l.self.migrating) {
      if (fixed.has(m.slot)) continue;
      fixed.add(m.slot);
      const target = liveById.get(m.to);
      fixes.push(
        target
          ? {
              kind: 'moveSlots',
              from: l.view.ref.pod,
              fromId: l.self.id,
              to: target.view.ref.pod,
              toId: m.to,
              slots: [m.slot],
            }
          : { kind: 'stableSlot', pod: l.view.ref.pod, slot: m.slot },
      );
    }
    for (const m of l.self.importing) {
      if (fixed.has(m.slot)) continue;
      fixed.add(m.slot);
      const source = liveById.get(m.from);
      fixes.push(
        source
          ? {
              kind: 'moveSlots',
              from: source.view.ref.pod,
              fromId: m.from,
              to: l.view.ref.pod,
              toId: l.self.id,
              slots: [m.slot],
            }
          : { kind: 'stableSlot', pod: l.view.ref.pod, slot: m.slot },
      );
    }
  }
  if (fixes.length > 0) {
    return out('resharding', `Finishing ${fixes.length} interrupted slot move(s).`, fixes);
  }

  // 5. Cover unassigned slots: evenly on a fresh cluster, else on the emptiest desired shard.
  const unowned = owner.flatMap((id, s) => (id === undefined ? [s] : []));
  const desired = range(layout.shards);
  const missing = desired.filter((s) => {
    const m = shardMaster.get(s);
    return !m || !inView.has(m.self.id);
  });
  if (unowned.length === SLOT_COUNT) {
    if (missing.length > 0) {
      return out('waiting', `Waiting for a master of shard ${missing[0]!} to answer.`);
    }
    return out(
      'forming',
      `Assigning the ${SLOT_COUNT} slots evenly over ${layout.shards} shard(s).`,
      desired.map((s) => ({
        kind: 'addSlots',
        pod: shardMaster.get(s)!.view.ref.pod,
        ranges: [evenSlotRange(s, layout.shards)],
      })),
    );
  }
  if (unowned.length > 0) {
    const target = desired
      .filter((s) => !missing.includes(s))
      .sort((a, b) => slotsOfShard(a) - slotsOfShard(b) || a - b)[0];
    if (target === undefined) return out('waiting', 'Waiting for a shard master to answer.');
    return out('healing', `Covering ${unowned.length} unassigned slot(s) on shard ${target}.`, [
      { kind: 'addSlots', pod: shardMaster.get(target)!.view.ref.pod, ranges: toRanges(unowned) },
    ]);
  }

  // 6. Every other node of a shard replicates that shard's master.
  const heirOfLostMaster = (masterId: string | undefined): boolean =>
    masters.some(
      (x) => x.id === masterId && slotCount(x.slots) > 0 && (isFailing(x) || !liveById.has(x.id)),
    );
  const replicate: RedisStep[] = [];
  for (const [s, m] of shardMaster) {
    if (isFailing(inView.get(m.self.id) ?? m.self)) continue;
    for (const l of live) {
      if (l.view.ref.shard !== s || l === m) continue;
      if (isMaster(l.self) && slotCount(l.self.slots) > 0) continue;
      if (!isMaster(l.self) && l.self.masterId === m.self.id) continue;
      // The replica of a master that is gone but still holds slots is its heir: Redis is about to
      // elect it. Pointing it at the shard's pod that came back empty (faster than the node
      // timeout, as a deleted pod does) would cancel that election and wipe the heir's data.
      if (!isMaster(l.self) && heirOfLostMaster(l.self.masterId)) continue;
      // The replica must know its master first; gossip brings that within a heartbeat or two.
      if (!l.view.nodes!.some((n) => n.id === m.self.id && !hasFlag(n, 'handshake'))) continue;
      replicate.push({ kind: 'replicate', pod: l.view.ref.pod, masterId: m.self.id });
    }
  }
  if (replicate.length > 0) {
    return out(
      'healing',
      `Attaching ${replicate.length} replica(s) to their shard master.`,
      replicate,
    );
  }

  // 7. Move slots until each desired shard holds its even share and removed shards hold none.
  const failingOwner = masters.find((m) => slotCount(m.slots) > 0 && isFailing(m));
  if (failingOwner) {
    return out(
      'waiting',
      `Waiting for Redis to fail over from master ${failingOwner.id.slice(0, 8)}, which is failing.`,
    );
  }
  if (unknownOwner) return out('waiting', 'A master that holds slots belongs to no known pod.');
  if (missing.length > 0)
    return out('waiting', `Waiting for a master of shard ${missing[0]!} to answer.`);
  const holders = live.filter((l) => isMaster(l.self) && slotCount(l.self.slots) > 0);
  const unreachable = masters.find((m) => slotCount(m.slots) > 0 && !liveById.has(m.id));
  if (unreachable)
    return out(
      'waiting',
      `Waiting for the master of ${podOf(unreachable)?.pod ?? 'a shard'} to answer.`,
    );
  const target = (l: Live): number => {
    const s = l.view.ref.shard;
    return s < layout.shards && shardMaster.get(s) === l ? evenSlotCount(s, layout.shards) : 0;
  };
  const donors = holders
    .map((l) => ({ l, surplus: slotCount(l.self.slots) - target(l) }))
    .filter((d) => d.surplus > 0)
    .sort(
      (a, b) =>
        Number(b.l.view.ref.shard >= layout.shards) - Number(a.l.view.ref.shard >= layout.shards) ||
        b.surplus - a.surplus ||
        byRef(a.l.view.ref, b.l.view.ref),
    );
  const receivers = desired
    .map((s) => shardMaster.get(s)!)
    .map((l) => ({ l, deficit: target(l) - slotCount(l.self.slots) }))
    .filter((r) => r.deficit > 0)
    .sort((a, b) => b.deficit - a.deficit || byRef(a.l.view.ref, b.l.view.ref));
  const donor = donors[0];
  const receiver = receivers[0];
  if (donor && receiver) {
    // Both ends must know each other and the receiver must see the whole cluster, or SETSLOT
    // and MIGRATE fail (unknown node, CLUSTERDOWN); gossip settles that within a few beats.
    const knows = (a: Live, b: Live): boolean =>
      a.view.nodes!.some((n) => n.id === b.self.id && !hasFlag(n, 'handshake'));
    if (!knows(donor.l, receiver.l) || !knows(receiver.l, donor.l)) {
      return out(
        'waiting',
        `Waiting for ${receiver.l.view.ref.pod} and ${donor.l.view.ref.pod} to know each other.`,
      );
    }
    if (receiver.l.view.clusterState !== 'ok') {
      return out('waiting', `Waiting for ${receiver.l.view.ref.pod} to see every slot served.`);
    }
    const retiring = target(donor.l) === 0;
    const own = expandSlots(donor.l.self.slots).sort((a, b) => b - a);
    const movable = own.filter((s) => s !== PINNED_SLOT);
    const n = Math.min(donor.surplus, receiver.deficit, MAX_SLOTS_PER_MOVE);
    // The pinned slot moves only off a donor that must give everything, and then alone.
    const slots = movable.length > 0 ? movable.slice(0, n) : retiring ? [PINNED_SLOT] : [];
    if (slots.length > 0) {
      return out(
        'resharding',
        `Moving ${slots.length} slot(s) from ${donor.l.view.ref.pod} to ${receiver.l.view.ref.pod}.`,
        [
          {
            kind: 'moveSlots',
            from: donor.l.view.ref.pod,
            fromId: donor.l.self.id,
            to: receiver.l.view.ref.pod,
            toId: receiver.l.self.id,
            slots: slots.sort((a, b) => a - b),
          },
        ],
      );
    }
  }

  // 8. Before a shard shrinks (replicasPerShard lowered), its master must be a pod that stays:
  // fail over onto an in-sync replica that is kept. The StatefulSet keeps the pods above the
  // new size (retainedNodes) until then, so the master is never the pod that is removed.
  for (const s of desired) {
    const m = shardMaster.get(s)!;
    if (m.view.ref.ordinal < want) continue;
    const heir = live.find(
      (l) =>
        l.view.ref.shard === s &&
        l.view.ref.ordinal < want &&
        l.self.masterId === m.self.id &&
        l.view.masterLinkUp,
    );
    if (!heir) {
      return out(
        'waiting',
        `Shard ${s} shrinks to ${want} node(s) but its master ${m.view.ref.pod} is not among them; waiting for a kept replica in sync to fail over onto.`,
      );
    }
    return out(
      'healing',
      `Failing shard ${s} over to ${heir.view.ref.pod}: its master ${m.view.ref.pod} is beyond the ${want} node(s) the shard keeps.`,
      [{ kind: 'failover', pod: heir.view.ref.pod }],
    );
  }

  // 9. Roll outdated pods one at a time, once every node of every desired shard is in place:
  // replicas first, then a failover onto an updated replica, then the old master.
  for (const s of desired) {
    const mine = live.filter((l) => l.view.ref.shard === s && l.view.ref.ordinal < want);
    const m = shardMaster.get(s)!;
    const synced = mine.filter(
      (l) => l !== m && l.self.masterId === m.self.id && l.view.masterLinkUp,
    );
    if (mine.length < want || synced.length < want - 1) {
      return out(
        'waiting',
        `Shard ${s} has ${mine.length} of ${want} node(s) up and ${synced.length} of ${want - 1} replica(s) in sync.`,
      );
    }
  }
  for (const s of desired) {
    const m = shardMaster.get(s)!;
    const stale = live.filter((l) => l.view.ref.shard === s && l.view.outdated && l !== m);
    if (stale.length > 0) {
      const pod = stale[stale.length - 1]!.view.ref.pod;
      return out('rolling', `Restarting replica ${pod} on the new template.`, [
        { kind: 'deletePod', pod },
      ]);
    }
  }
  for (const s of desired) {
    const m = shardMaster.get(s)!;
    if (!m.view.outdated) continue;
    const heir = live.find(
      (l) =>
        l.view.ref.shard === s &&
        l !== m &&
        !l.view.outdated &&
        l.self.masterId === m.self.id &&
        l.view.masterLinkUp,
    );
    if (heir) {
      return out(
        'rolling',
        `Failing shard ${s} over to ${heir.view.ref.pod} before its master restarts.`,
        [{ kind: 'failover', pod: heir.view.ref.pod }],
      );
    }
    return out(
      'rolling',
      `Restarting master ${m.view.ref.pod}, which has no replica to take over.`,
      [{ kind: 'deletePod', pod: m.view.ref.pod }],
    );
  }
  if (departing.length > 0) {
    return out(
      'waiting',
      `Waiting for ${departing.length} departed node(s) to be flagged failing before forgetting them.`,
    );
  }
  const notOk = live.find((l) => l.view.clusterState !== undefined && l.view.clusterState !== 'ok');
  if (notOk) {
    return out(
      'waiting',
      `Waiting for ${notOk.view.ref.pod} to report cluster_state ok (it reports ${notOk.view.clusterState}).`,
    );
  }
  return out('stable', 'Every slot is served and every shard holds its share.');
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
