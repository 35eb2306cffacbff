// The Redis Cluster of a RealtimeCluster on the real node, as its own nodes report it:
// `CLUSTER SHARDS` run in a Redis pod as the servers' ACL user (the default user is off), its
// password read from the cluster's Secret and handed to redis-cli on stdin, so it appears in
// no command line and no audit log.
import { ClusterBus } from '../../../server-image/src/adapter/bus.js';
import type { RealNode } from '../harness.js';

export interface RedisNodeView {
  id: string;
  /** The pod, from the host name the node announces (`<pod>.<service>.<ns>.svc`). */
  pod: string;
  master: boolean;
  /** Not `online` (failed, or loading) as the answering node sees it. */
  failing: boolean;
  /** The slots of its shard (a replica reports its master's). */
  slots: [number, number][];
}

/**
 * Parses redis-cli's flat output of CLUSTER SHARDS: per shard `slots` and its range bounds,
 * then `nodes` and, per node, field/value pairs starting with `id`.
 */
export function parseClusterShards(text: string): RedisNodeView[] {
  const t = text.split('\n').map((x) => x.trim());
  const out: RedisNodeView[] = [];
  let slots: [number, number][] = [];
  let node: Record<string, string> | undefined;
  const flush = (): void => {
    if (!node) return;
    const host = node.hostname || node.endpoint || node.ip || '';
    out.push({
      id: node.id ?? '',
      pod: host.split('.')[0]!,
      master: node.role === 'master',
      failing: node.health !== 'online',
      slots: node.role === 'master' ? slots : [],
    });
    node = undefined;
  };
  for (let i = 0; i < t.length; i++) {
    const tok = t[i]!;
    if (tok === 'slots') {
      flush();
      slots = [];
      for (i++; i + 1 < t.length && /^\d+$/.test(t[i]!); i += 2) {
        slots.push([Number(t[i]), Number(t[i + 1])]);
      }
      i--;
    } else if (tok === 'nodes') {
      continue;
    } else if (tok === 'id') {
      flush();
      node = { id: t[++i] ?? '' };
    } else if (node && tok !== '') {
      node[tok] = t[++i] ?? '';
    }
  }
  flush();
  return out;
}

let serverPassword: string | undefined;

export async function clusterNodes(
  node: RealNode,
  ns: string,
  pod: string,
  cluster = pod.replace(/-redis-\d+-\d+$/, ''),
): Promise<RedisNodeView[]> {
  serverPassword ??= Buffer.from(
    await node.kubectlOk([
      '-n',
      ns,
      'get',
      'secret',
      `${cluster}-redis-acl`,
      '-o',
      'jsonpath={.data.server-password}',
    ]),
    'base64',
  ).toString('utf8');
  const text = await node.kubectlOk(
    [
      '-n',
      ns,
      'exec',
      '-i',
      pod,
      '-c',
      'redis',
      '--',
      'sh',
      '-c',
      'read -r p; REDISCLI_AUTH="$p" exec redis-cli --user socketfleet-server cluster shards',
    ],
    `${serverPassword}\n`,
  );
  return parseClusterShards(text);
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
