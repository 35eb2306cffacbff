// The Redis Cluster of a RealtimeCluster on the real node, as its own nodes report it
// (`redis-cli cluster nodes` in a Redis pod; REDISCLI_AUTH is in the pod's environment).
import { ClusterBus } from '../../../server-image/src/adapter/bus.js';
import type { RealNode } from '../harness.js';

export interface RedisNodeView {
  id: string;
  /** The pod, from the host name the node announces (`<pod>.<service>.<ns>.svc`). */
  pod: string;
  master: boolean;
  /** Flagged failing (fail or fail?) by the node that answered. */
  failing: boolean;
  slots: [number, number][];
}

export function parseClusterNodes(text: string): RedisNodeView[] {
  const out: RedisNodeView[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const host = f[1]!.split(',')[1] ?? f[1]!;
    const flags = f[2]!.split(',');
    const slots: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // a slot being migrated or imported
      const [a, b] = s.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({
      id: f[0]!,
      pod: host.split('.')[0]!,
      master: flags.includes('master'),
      failing: flags.includes('fail') || flags.includes('fail?'),
      slots,
    });
  }
  return out;
}

export async function clusterNodes(
  node: RealNode,
  ns: string,
  pod: string,
): Promise<RedisNodeView[]> {
  const text = await node.kubectlOk([
    '-n',
    ns,
    'exec',
    pod,
    '-c',
    'redis',
    '--',
    'redis-cli',
    'cluster',
    'nodes',
  ]);
  return parseClusterNodes(text);
}

/** The hash slot of a room's channel on the sharded adapter. */
export function roomSlot(room: string): number {
  return ClusterBus.slotOf(`socket.io#/#${room}#`);
}

/** The pod of the master serving `slot`, by one node's view. */
export function ownerOf(nodes: RedisNodeView[], slot: number): string | undefined {
  return nodes.find(
    (n) => n.master && !n.failing && n.slots.some(([a, b]) => slot >= a && slot <= b),
  )?.pod;
}

/** Shard number of a Redis pod named `<cluster>-redis-<shard>-<ordinal>`. */
export function shardOfPod(pod: string): number {
  const m = /-redis-(\d+)-\d+$/.exec(pod);
  if (!m) throw new Error(`${pod} is not a Redis shard pod`);
  return Number(m[1]);
}
