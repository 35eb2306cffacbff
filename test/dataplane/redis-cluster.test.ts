import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
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
import { deriveRedisPasswords, REDIS_USERS } from '../../operator/desired/redis-acl.js';

/**
 * The planner and executor against real redis-server processes in cluster mode on loopback:
 * form 2 x 2, add a shard and rebalance with keys, remove it, survive a master kill without
 * fighting Redis's failover, rejoin an empty node, and roll every node one at a time.
 */

// The operator's ACL layout: the planner runs as socketfleet-operator with exactly its rules,
// replicas sync as socketfleet-replication; the test writes keys as its own user.
const PASSWORDS = deriveRedisPasswords(Buffer.alloc(32, 7), 'redis-cluster-test');
const WRITER = { username: 'test-writer', password: 'cluster-test-pw' };
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
  const admin = new RedisAdmin({
    username: REDIS_USERS.operator,
    password: PASSWORDS.operator,
    timeoutMs: 1000,
  });
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
      passwords: PASSWORDS,
      extraConf: [`user ${WRITER.username} on >${WRITER.password} ~* &* +@all`],
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
    replicasPerShard = 1,
  ): Promise<{ plan: RedisPlan; steps: RedisStep[]; ms: number }> {
    const t0 = Date.now();
    const steps: RedisStep[] = [];
    const plan = await convergeRedisCluster(
      admin,
      { shards, replicasPerShard },
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
    const client = new Cluster(seeds(), { redisOptions: WRITER });
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

  it('tells a login every node refuses (a cluster made under the previous operator key) from one that works', async () => {
    const rotated = deriveRedisPasswords(Buffer.alloc(32, 8), 'redis-cluster-test');
    const stale = new RedisAdmin({
      username: REDIS_USERS.operator,
      password: rotated.operator,
      timeoutMs: 1000,
    });
    try {
      const refused = await stale.observe(pods());
      expect(refused.every((v) => v.nodes === undefined)).toBe(true);
      expect(stale.everyLoginRefused()).toBe(true);
    } finally {
      stale.close();
    }
    const seen = await admin.observe(pods());
    expect(seen.every((v) => v.nodes !== undefined)).toBe(true);
    expect(admin.everyLoginRefused()).toBe(false);
  });
});

describe('Redis Cluster planner on real redis-server: lowering replicasPerShard', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'socketfleet-rc-shrink-'));
  const nodes = new Map<string, RedisNodeProcess>();
  const admin = new RedisAdmin({
    username: REDIS_USERS.operator,
    password: PASSWORDS.operator,
    timeoutMs: 1000,
  });

  async function start(shard: number, ordinal: number): Promise<void> {
    const n = await startRedisNode({
      cluster: spec,
      shard,
      ordinal,
      port: await freePort(),
      busPort: await freePort(),
      stateDir,
      passwords: PASSWORDS,
      redisServer: 'redis-server',
      fresh: false,
    });
    nodes.set(n.ref.pod, n);
  }

  const pods = (): ObservedPod[] =>
    [...nodes.values()].map((n) => ({ ref: n.ref, outdated: false }));

  afterAll(async () => {
    admin.close();
    await Promise.all([...nodes.values()].map((n) => n.proc.stop(2000)));
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('2 -> 1 replicas per shard: fails over off the highest ordinal before its StatefulSet shrinks', async () => {
    await Promise.all([0, 1].flatMap((s) => [0, 1, 2].map((o) => start(s, o))));
    const formed = await convergeRedisCluster(
      admin,
      { shards: 2, replicasPerShard: 2 },
      { pods, deletePod: () => Promise.resolve(), timeoutMs: 60_000 },
    );
    expect(formed.phase).toBe('stable');
    // Shard 0's master is now its highest ordinal, the pod a StatefulSet removes first.
    const highest = nodes.get('rc-redis-0-2')!;
    const direct = new Redis({
      port: highest.ref.port,
      username: REDIS_USERS.operator,
      password: PASSWORDS.operator,
      lazyConnect: true,
    });
    await direct.connect();
    await direct.call('CLUSTER', 'FAILOVER');
    const deadline = Date.now() + 15_000;
    while (!String(await direct.call('INFO', 'replication')).includes('role:master')) {
      if (Date.now() > deadline) throw new Error('CLUSTER FAILOVER did not finish in 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    direct.disconnect();

    // The StatefulSet controller's part: keep max(2, retained) pods per shard, removing the
    // highest ordinals; record every master it would have removed.
    const retainedSeen: string[] = [];
    const removed: string[] = [];
    const removedMasters: string[] = [];
    const t0 = Date.now();
    const steps: RedisStep[] = [];
    // Until a stable plan saw no pod removed in its round (the last removal's id is forgotten).
    let plan: RedisPlan | undefined;
    for (let before = -1; plan?.phase !== 'stable' || before !== removed.length;) {
      before = removed.length;
      plan = await convergeRedisCluster(
        admin,
        { shards: 2, replicasPerShard: 1 },
        {
          pods,
          deletePod: () => Promise.resolve(),
          timeoutMs: 60_000,
          onPlan: (p) => {
            steps.push(...p.steps);
            retainedSeen.push(JSON.stringify(p.retainedNodes));
            for (const shard of [0, 1]) {
              const size = Math.max(2, p.retainedNodes.find((r) => r.shard === shard)?.nodes ?? 0);
              for (const n of [...nodes.values()]) {
                if (n.ref.shard !== shard || n.ref.ordinal < size) continue;
                if (p.shards.find((s) => s.index === shard)?.master === n.ref.pod)
                  removedMasters.push(n.ref.pod);
                removed.push(n.ref.pod);
                nodes.delete(n.ref.pod);
                void n.proc.stop(2000);
              }
            }
          },
        },
      );
    }
    console.log(
      `replicasPerShard 2 -> 1 in ${Date.now() - t0} ms: ${steps.map((s) => s.kind).join(', ')}`,
    );
    expect(retainedSeen[0]).toBe(JSON.stringify([{ shard: 0, nodes: 3 }]));
    // CLUSTER FAILOVER answers before the replica has taken over, so the next round may ask
    // again; every ask names the kept replica of shard 0.
    const failovers = steps.filter((s) => s.kind === 'failover');
    expect(failovers.length).toBeGreaterThan(0);
    for (const f of failovers) expect(f).toEqual({ kind: 'failover', pod: 'rc-redis-0-0' });
    expect(removedMasters).toEqual([]);
    expect(removed.sort()).toEqual(['rc-redis-0-2', 'rc-redis-1-2']);
    expect(plan.phase).toBe('stable');
    expect(plan.slotsCovered).toBe(SLOT_COUNT);
    expect(plan.shards.map((s) => [s.master, s.slots, s.replicas, s.replicasInSync])).toEqual([
      ['rc-redis-0-0', 8192, 1, 1],
      ['rc-redis-1-0', 8192, 1, 1],
    ]);
    // The removed nodes' ids are forgotten everywhere.
    for (const v of await admin.observe(pods())) expect(v.nodes).toHaveLength(4);
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
