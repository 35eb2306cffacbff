import type { RedisPodRef } from '../../operator/desired/redis.js';
import type { RedisLayout, RedisPodView, RedisStep } from '../../operator/desired/redis-planner.js';
import { toRanges, type ClusterNodeLine } from '../../operator/desired/redis-nodes.js';

/**
 * A model of a Redis Cluster for the planner's unit tests only: it renders each node's
 * CLUSTER NODES from one shared truth and applies planner steps the way Redis would. The
 * executor is tested against real redis-server processes (test/dataplane/redis-cluster.test.ts).
 */
export interface SimNode {
  pod: RedisPodRef;
  id: string;
  master: string | undefined;
  slots: Set<number>;
  alive: boolean;
  outdated: boolean;
  known: Set<string>;
  importing: Map<number, string>;
  migrating: Map<number, string>;
}

let nextId = 1;
const newId = (): string => (nextId++).toString(16).padStart(40, '0');

export function podRef(shard: number, ordinal: number): RedisPodRef {
  const pod = `demo-redis-${shard}-${ordinal}`;
  return { shard, ordinal, pod, host: `${pod}.demo-redis-${shard}.rt.svc`, port: 6379 };
}

export class SimCluster {
  /** Every node id ever seen, dead ones too (they linger in views until forgotten). */
  readonly nodes = new Map<string, SimNode>();
  /** The node each pod runs now. */
  readonly byPod = new Map<string, SimNode>();
  deletedPods = 0;

  constructor(public layout: RedisLayout) {
    this.ensurePods(range(layout.shards));
  }

  ensurePods(shards: number[]): void {
    for (const s of shards) {
      for (let o = 0; o <= this.layout.replicasPerShard; o++) {
        const ref = podRef(s, o);
        if (!this.byPod.has(ref.pod)) this.start(ref);
      }
    }
  }

  /** A pod (re)starting with an empty data dir: a new node id that knows only itself. */
  start(ref: RedisPodRef, outdated = false): SimNode {
    const id = newId();
    const n: SimNode = {
      pod: ref,
      id,
      master: undefined,
      slots: new Set(),
      alive: true,
      outdated,
      known: new Set([id]),
      importing: new Map(),
      migrating: new Map(),
    };
    this.nodes.set(id, n);
    this.byPod.set(ref.pod, n);
    return n;
  }

  /** The pod dies; Redis promotes a live replica of a master that held slots. */
  kill(pod: string): void {
    const n = this.byPod.get(pod)!;
    n.alive = false;
    if (n.master === undefined && n.slots.size > 0) {
      const heir = [...this.nodes.values()].find((r) => r.alive && r.master === n.id);
      if (heir) this.promote(heir);
    }
  }

  /** Redis elects replica `r` in place of its (failed) master. */
  promote(r: SimNode): void {
    const old = this.nodes.get(r.master!)!;
    r.slots = old.slots;
    old.slots = new Set();
    r.master = undefined;
    for (const x of this.nodes.values()) if (x.master === old.id && x !== r) x.master = r.id;
    if (old.alive) old.master = r.id;
  }

  /** Pods that have a StatefulSet: the spec's shards and the retained ones. */
  views(shards: number[]): RedisPodView[] {
    const out: RedisPodView[] = [];
    for (const s of shards) {
      // Every pod the shard's StatefulSet still has: more than the layout asks for while the
      // planner retains them (replicasPerShard lowered).
      const ordinals = [...this.byPod.values()]
        .filter((n) => n.pod.shard === s)
        .map((n) => n.pod.ordinal)
        .sort((a, b) => a - b);
      for (const o of ordinals) {
        const n = this.byPod.get(podRef(s, o).pod);
        if (!n) continue;
        const master = n.master ? this.nodes.get(n.master) : undefined;
        out.push({
          ref: n.pod,
          ip: `10.0.${s}.${o}`,
          nodes: n.alive ? this.render(n) : undefined,
          masterLinkUp: !!master?.alive,
          outdated: n.outdated,
          clusterState: 'ok',
        });
      }
    }
    return out;
  }

  private render(self: SimNode): ClusterNodeLine[] {
    return [...self.known].map((id) => {
      const n = this.nodes.get(id)!;
      const flags = [
        n === self ? 'myself' : '',
        n.master ? 'slave' : 'master',
        n.alive ? '' : 'fail',
      ].filter(Boolean);
      return {
        id,
        ip: n.pod.host.replace(/^.*$/, `10.0.${n.pod.shard}.${n.pod.ordinal}`),
        port: 6379,
        busPort: 16379,
        hostname: n.pod.host,
        flags,
        masterId: n.master,
        configEpoch: 0,
        connected: n.alive,
        slots: toRanges([...n.slots]),
        importing: n === self ? [...n.importing].map(([slot, from]) => ({ slot, from })) : [],
        migrating: n === self ? [...n.migrating].map(([slot, to]) => ({ slot, to })) : [],
      };
    });
  }

  /** Gossip: live nodes that know each other end up knowing the same (non-forgotten) ids. */
  gossip(): void {
    const live = [...this.byPod.values()].filter((n) => n.alive);
    for (let changed = true; changed;) {
      changed = false;
      for (const a of live) {
        for (const id of [...a.known]) {
          const b = this.nodes.get(id)!;
          if (!b.alive || b === a) continue;
          for (const k of [...a.known, ...b.known]) {
            if (!a.known.has(k)) {
              a.known.add(k);
              changed = true;
            }
            if (!b.known.has(k)) {
              b.known.add(k);
              changed = true;
            }
          }
        }
      }
    }
  }

  /** The StatefulSet of `shard` scaled to `size`: pods from the highest ordinal down go. */
  scaleShard(shard: number, size: number): string[] {
    const gone: string[] = [];
    for (const [pod, n] of this.byPod) {
      if (n.pod.shard !== shard || n.pod.ordinal < size) continue;
      this.kill(pod);
      this.byPod.delete(pod);
      gone.push(pod);
    }
    return gone;
  }

  owner(slot: number): SimNode | undefined {
    return [...this.nodes.values()].find((n) => n.slots.has(slot));
  }

  apply(step: RedisStep): void {
    const pod = (name: string): SimNode => this.byPod.get(name)!;
    switch (step.kind) {
      case 'meet': {
        const via = pod(step.via);
        const t = pod(step.target);
        via.known.add(t.id);
        t.known.add(via.id);
        break;
      }
      case 'forget':
        for (const n of this.byPod.values()) for (const id of step.ids) n.known.delete(id);
        break;
      case 'stableSlot':
        pod(step.pod).importing.delete(step.slot);
        pod(step.pod).migrating.delete(step.slot);
        break;
      case 'addSlots':
        for (const [a, b] of step.ranges) for (let s = a; s <= b; s++) pod(step.pod).slots.add(s);
        break;
      case 'replicate': {
        const n = pod(step.pod);
        if (n.slots.size > 0) throw new Error('replicate on a master with slots');
        n.master = step.masterId;
        break;
      }
      case 'moveSlots': {
        const from = pod(step.from);
        const to = pod(step.to);
        for (const s of step.slots) {
          if (!from.slots.has(s) && !to.slots.has(s))
            throw new Error(`slot ${s} not on either side`);
          from.slots.delete(s);
          to.slots.add(s);
          from.migrating.delete(s);
          to.importing.delete(s);
        }
        break;
      }
      case 'failover':
        this.promote(pod(step.pod));
        break;
      case 'deletePod': {
        const n = pod(step.pod);
        this.kill(step.pod);
        this.deletedPods++;
        this.start(n.pod, false);
        break;
      }
    }
  }
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
