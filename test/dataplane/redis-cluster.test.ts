import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import {
  PINNED_SLOT,
  type RedisPlan,
  type RedisStep,
} from '../../operator/desired/redis-planner.js';
import { SLOT_COUNT } from '../../operator/desired/redis-nodes.js';
import { startRedisNode, type RedisNodeProcess } from '../../operator/local/redis.js';
import { freePort } from '../../operator/local/ports.js';
import { RedisAdmin, type ObservedPod } from '../../operator/reconcile/redis-admin.js';
import { convergeRedisCluster } from '../../operator/reconcile/redis-converge.js';

/**
 * The planner and executor against real redis-server processes in cluster mode on loopback:
 * form 2 x 2, add a shard and rebalance with keys, remove it, survive a master kill without
 * fighting Redis's failover, rejoin an empty node, and roll every node one at a time.
 */

const PASSWORD = 'cluster-test-pw';
const parsed = parseRealtimeCluster({
  apiVersion: 'socketfleet.dev/v1alpha1',
  kind: 'RealtimeCluster',
  metadata: { name: 'rc' },
  spec: { redis: { shards: 2, replicasPerShard: 1, nodeTimeoutMs: 1000 } },
});
if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
const spec: RealtimeCluster = parsed.cluster;

describe('Redis Cluster planner + executor on real redis-server', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'socketfleet-rc-'));
  const nodes = new Map<string, RedisNodeProcess>();
  const outdated = new Set<string>();
  const admin = new RedisAdmin({ password: PASSWORD, timeoutMs: 1000 });
  let shardsRunning: number[] = [];

  async function start(shard: number, ordinal: number, fresh = false): Promise<void> {
    const old = nodes.get(`rc-redis-${shard}-${ordinal}`);
    const n = await startRedisNode({
      cluster: spec,
      shard,
      ordinal,
      port: old?.ref.port ?? (await freePort()),
      busPort: old?.busPort ?? (await freePort()),
      stateDir,
      password: PASSWORD,
      redisServer: 'redis-server',
      fresh,
    });
    nodes.set(n.ref.pod, n);
  }

  const pods = (): ObservedPod[] =>
    [...nodes.values()]
      .filter((n) => shardsRunning.includes(n.ref.shard))
      .map((n) => ({ ref: n.ref, outdated: outdated.has(n.ref.pod) }));

  async function restartFresh(pod: string): Promise<void> {
    const n = nodes.get(pod)!;
    await n.proc.stop(2000);
    outdated.delete(pod);
    await start(n.ref.shard, n.ref.ordinal, true);
  }

  async function converge(
    shards: number,
    onPlan?: (p: RedisPlan) => void,
    stopped?: () => boolean,
  ): Promise<{ plan: RedisPlan; steps: RedisStep[]; ms: number }> {
    const t0 = Date.now();
    const steps: RedisStep[] = [];
    const plan = await convergeRedisCluster(
      admin,
      { shards, replicasPerShard: 1 },
      {
        pods,
        deletePod: restartFresh,
        timeoutMs: 60_000,
        ...(stopped ? { stopped } : {}),
        onError: (step, err) => {
          if (process.env.DEBUG_RC) console.log('step failed', step.kind, (err as Error).message);
        },
        onPlan: (p) => {
          if (process.env.DEBUG_RC) console.log(Date.now() - t0, p.phase, p.reason);
          steps.push(...p.steps);
          onPlan?.(p);
        },
      },
    );
    return { plan, steps, ms: Date.now() - t0 };
  }

  const seeds = (): { host: string; port: number }[] =>
    [...nodes.values()]
      .filter((n) => n.proc.running)
      .map((n) => ({ host: '127.0.0.1', port: n.ref.port }));

  beforeAll(async () => {
    await Promise.all([0, 1].flatMap((s) => [0, 1].map((o) => start(s, o))));
    shardsRunning = [0, 1];
  });

  afterAll(async () => {
    admin.close();
    await Promise.all([...nodes.values()].map((n) => n.proc.stop(2000)));
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('forms 2 shards x (master + replica) with the slots split evenly', async () => {
    const { plan, steps, ms } = await converge(2);
    console.log(`formed 2 x 2 in ${ms} ms with ${steps.length} steps`);
    expect(plan.phase).toBe('stable');
    expect(plan.slotsCovered).toBe(SLOT_COUNT);
    expect(plan.clusterState).toBe('ok');
    expect(plan.shards).toEqual([
      { index: 0, master: 'rc-redis-0-0', slots: 8192, replicas: 1, replicasInSync: 1 },
      { index: 1, master: 'rc-redis-1-0', slots: 8192, replicas: 1, replicasInSync: 1 },
    ]);
  });

  it('adds a third shard and moves slots onto it with their keys, leaving slot 13868 alone', async () => {
    const client = new Cluster(seeds(), { redisOptions: { password: PASSWORD } });
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    for (const k of keys) await client.set(k, k);
    // Connection-state recovery's room logs are streams, its sessions carry a TTL: both move too.
    const logs = Array.from({ length: 50 }, (_, i) => `{socket.io#/#room-${i}#}:sf-log`);
    for (const k of logs) for (let n = 0; n < 3; n++) await client.xadd(k, '*', 'm', `${k}-${n}`);
    for (const k of keys.slice(0, 50)) await client.pexpire(k, 600_000);
    const before = await admin.observe(pods());
    const pinnedOwnerBefore = ownerOf(before, PINNED_SLOT);
    await Promise.all([start(2, 0), start(2, 1)]);
    shardsRunning = [0, 1, 2];
    const { plan, steps, ms } = await converge(3);
    const moved = steps
      .filter((s) => s.kind === 'moveSlots')
      .reduce((n, s) => n + s.slots.length, 0);
    console.log(`2 -> 3 shards: ${moved} slots moved in ${ms} ms`);
    expect(plan.phase).toBe('stable');
    expect(plan.shards.map((s) => s.slots)).toEqual([5462, 5461, 5461]);
    expect(ownerOf(await admin.observe(pods()), PINNED_SLOT)).toBe(pinnedOwnerBefore);
    // Every key is still there, wherever its slot went.
    const values = await Promise.all(keys.map((k) => client.get(k)));
    expect(values).toEqual(keys);
    const lengths = await Promise.all(logs.map((k) => client.xlen(k)));
    expect(lengths).toEqual(logs.map(() => 3));
    const ttls = await Promise.all(keys.slice(0, 50).map((k) => client.pttl(k)));
    expect(ttls.every((t) => t > 0 && t <= 600_000)).toBe(true);
    client.disconnect();
  });

  it('removes the third shard: its slots move away before it may go, then its ids are forgotten', async () => {
    const retained: number[][] = [];
    const { plan } = await converge(2, (p) => retained.push(p.retainedShards));
    expect(retained[0]).toEqual([2]);
    expect(plan.retainedShards).toEqual([]);
    expect(plan.shards.filter((s) => s.index === 2)).toEqual([
      expect.objectContaining({ slots: 0, retiring: true }),
    ]);
    // Only now does the shard go, as the operator deletes its StatefulSet.
    shardsRunning = [0, 1];
    await Promise.all(
      [...nodes.values()].filter((n) => n.ref.shard === 2).map((n) => n.proc.stop(2000)),
    );
    const after = await converge(2);
    expect(after.steps.map((s) => s.kind)).toContain('forget');
    const views = await admin.observe(pods());
    for (const v of views) expect(v.nodes).toHaveLength(4);
    expect(after.plan.shards.map((s) => s.slots)).toEqual([8192, 8192]);
  });

  it('promotes the replica of a killed master (2 masters cannot vote), then rejoins the empty pod', async () => {
    const master = nodes.get('rc-redis-0-0')!;
    const t0 = Date.now();
    master.proc.signal('SIGKILL');
    let promotedMs = 0;
    // Until the replica serves the slots; the dead pod stays down meanwhile.
    const { steps } = await converge(
      2,
      (p) => {
        if (!promotedMs && p.shards[0]?.master === 'rc-redis-0-1' && p.shards[0].slots === 8192) {
          promotedMs = Date.now() - t0;
        }
      },
      () => promotedMs > 0,
    );
    console.log(`replica serving shard 0's slots ${promotedMs} ms after SIGKILL of its master`);
    // The only step while the master was gone: the vote-less promotion of its replica.
    expect(steps).toEqual([{ kind: 'failover', pod: 'rc-redis-0-1', takeover: true }]);
    expect(promotedMs).toBeGreaterThan(0);
    await start(0, 0, true);
    const rejoin = await converge(2);
    expect(rejoin.steps.map((s) => s.kind)).toEqual(
      expect.arrayContaining(['meet', 'forget', 'replicate']),
    );
    expect(rejoin.plan.shards[0]).toEqual({
      index: 0,
      master: 'rc-redis-0-1',
      slots: 8192,
      replicas: 1,
      replicasInSync: 1,
    });
  });

  it('rolls every node one at a time, with every slot served throughout', async () => {
    for (const n of nodes.values())
      if (shardsRunning.includes(n.ref.shard)) outdated.add(n.ref.pod);
    let minCovered = SLOT_COUNT;
    const { plan, steps } = await converge(2, (p) => {
      minCovered = Math.min(minCovered, p.slotsCovered);
    });
    expect(plan.phase).toBe('stable');
    expect(outdated.size).toBe(0);
    expect(steps.filter((s) => s.kind === 'deletePod')).toHaveLength(4);
    expect(steps.filter((s) => s.kind === 'failover')).toHaveLength(2);
    expect(minCovered).toBe(SLOT_COUNT);
  });
});

function ownerOf(
  views: Awaited<ReturnType<RedisAdmin['observe']>>,
  slot: number,
): string | undefined {
  for (const v of views) {
    const self = v.nodes?.find((n) => n.flags.includes('myself'));
    if (self?.slots.some(([a, b]) => slot >= a && slot <= b)) return v.ref.pod;
  }
  return undefined;
}
