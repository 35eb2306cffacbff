import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { plaintextPingReply } from './support/plaintext-probe.js';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { deriveRedisPasswords, REDIS_USERS } from '../../operator/desired/redis-acl.js';
import { REDIS_TLS_DIR, redisClientPodParts } from '../../operator/desired/redis-client.js';
import { SLOT_COUNT } from '../../operator/desired/redis-nodes.js';
import { REDIS_PORT } from '../../operator/desired/ports.js';
import { buildRedisStatefulSet } from '../../operator/desired/redis.js';
import {
  REDIS_TLS_CA_FILE,
  redisTlsServerName,
  type RedisTlsFiles,
} from '../../operator/desired/redis-tls.js';
import { freePort } from '../../operator/local/ports.js';
import { startRedisNode, type RedisNodeProcess } from '../../operator/local/redis.js';
import { RedisAdmin, type ObservedPod } from '../../operator/reconcile/redis-admin.js';
import { convergeRedisCluster } from '../../operator/reconcile/redis-converge.js';
import { closeAllClients } from './support/clients.js';
import { Fleet, sleep, type ServerProcess } from './support/fleet.js';
import { makeCa, redisNodeCertExt, signCert } from './support/test-certs.js';
import { RoomTraffic } from './support/traffic.js';

/**
 * spec.redis.tls on operator-run shards, with real parts: redis-server 7.0 processes in cluster
 * mode with the operator's own redis.conf (TLS only: no plaintext listener, TLS on the bus and
 * for replication), certificates made here with openssl that name only the shared server name
 * (no IP, no localhost), the operator's planner and executor forming 2 shards x 2 nodes over TLS
 * with nothing but the CA bundle and its ACL password, then Socket.IO servers started with
 * exactly the TLS environment a server pod gets, delivering across both shards.
 */

const PASSWORDS = deriveRedisPasswords(Buffer.alloc(32, 9), 'redis-tls-shards-test');
const parsed = parseRealtimeCluster({
  apiVersion: 'socketfleet.dev/v1alpha1',
  kind: 'RealtimeCluster',
  metadata: { name: 'rc', namespace: 'tls-test' },
  spec: {
    redis: {
      shards: 2,
      replicasPerShard: 1,
      nodeTimeoutMs: 1000,
      tls: { secretName: 'rc-redis-tls', caConfigMap: { name: 'rc-redis-ca' } },
    },
  },
});
if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
const spec: RealtimeCluster = parsed.cluster;
const SERVER_NAME = redisTlsServerName(spec)!;

describe('operator-run Redis shards over TLS only (spec.redis.tls)', () => {
  const fleet = new Fleet('redis-tls-shards');
  const dir = fleet.dir;
  const f = (name: string): string => join(dir, name);
  const files: RedisTlsFiles = {
    certFile: f('node.crt'),
    keyFile: f('node.key'),
    caFile: f('ca.crt'),
  };
  const nodes: RedisNodeProcess[] = [];
  let admin: RedisAdmin;
  let servers: ServerProcess[] = [];

  const pods = (): ObservedPod[] => nodes.map((n) => ({ ref: n.ref, outdated: false }));
  const adminWith = (tls: { ca: string; serverName: string }): RedisAdmin =>
    new RedisAdmin({
      username: REDIS_USERS.operator,
      password: PASSWORDS.operator,
      timeoutMs: 1000,
      tls,
    });

  beforeAll(async () => {
    makeCa(dir, 'ca');
    makeCa(dir, 'other-ca');
    // What a cert-manager Certificate for this cluster would hold: the one shared name.
    signCert(dir, 'node', 'ca', redisNodeCertExt(`DNS:${SERVER_NAME}`), SERVER_NAME);
    const started = await Promise.all(
      [0, 1].flatMap((shard) =>
        [0, 1].map(async (ordinal) =>
          startRedisNode({
            cluster: spec,
            shard,
            ordinal,
            port: await freePort(),
            busPort: await freePort(),
            stateDir: dir,
            passwords: PASSWORDS,
            redisServer: 'redis-server',
            tls: files,
          }),
        ),
      ),
    );
    nodes.push(...started);
    admin = adminWith({ ca: readFileSync(files.caFile, 'utf8'), serverName: SERVER_NAME });
  });

  afterAll(async () => {
    admin?.close();
    closeAllClients();
    await fleet.stopAll();
    await Promise.all(nodes.map((n) => n.proc.stop(2000)));
  });

  it("renders a node config with no plaintext listener, and the pod's readiness probe passes over TLS", () => {
    const conf = readFileSync(join(nodes[0]!.dir, 'redis.conf'), 'utf8');
    expect(conf).toMatch(/^port 0$/m);
    expect(conf).toMatch(new RegExp(`^tls-port ${nodes[0]!.ref.port}$`, 'm'));
    expect(conf).toMatch(/^tls-cluster yes$/m);
    expect(conf).toMatch(/^tls-replication yes$/m);
    // The probe exactly as the StatefulSet renders it, pointed at this node and CA file.
    const sts = buildRedisStatefulSet(spec, 0) as unknown as {
      spec: {
        template: { spec: { containers: { readinessProbe?: { exec: { command: string[] } } }[] } };
      };
    };
    const probe = sts.spec.template.spec.containers[0]!.readinessProbe!.exec.command;
    const script = probe[2]!
      .replace(REDIS_TLS_CA_FILE, files.caFile)
      .replace(`-p ${REDIS_PORT}`, `-p ${nodes[0]!.ref.port}`);
    expect(script).toContain('--tls');
    expect(spawnSync('sh', ['-c', script]).status).toBe(0);
    // Without --tls the same probe fails: there is nothing in plain TCP to answer it.
    expect(spawnSync('sh', ['-c', script.replace(/ --tls --cacert \S+/, '')]).status).not.toBe(0);
  });

  it("forms 2 shards x 2 nodes with the operator's planner and executor over TLS, replicas in sync", async () => {
    const t0 = Date.now();
    const plan = await convergeRedisCluster(
      admin,
      { shards: 2, replicasPerShard: 1 },
      {
        pods,
        deletePod: () => Promise.reject(new Error('no restarts expected')),
        timeoutMs: 30_000,
      },
    );
    console.log(`formed 2 x 2 over TLS in ${Date.now() - t0} ms`);
    expect(plan.phase).toBe('stable');
    expect(plan.slotsCovered).toBe(SLOT_COUNT);
    expect(plan.clusterState).toBe('ok');
    // Replication over TLS: each replica's link to its master is up.
    expect(plan.shards.map((s) => [s.slots, s.replicasInSync])).toEqual([
      [8192, 1],
      [8192, 1],
    ]);
  });

  it('refuses plaintext: a plain TCP PING gets no answer, and a client trusting another CA or expecting another name sees no node', async () => {
    const reply = await plaintextPingReply(nodes[0]!.ref.port, 1500);
    expect(reply).not.toContain('PONG');
    const ca = readFileSync(files.caFile, 'utf8');
    for (const tls of [
      { ca: readFileSync(f('other-ca.crt'), 'utf8'), serverName: SERVER_NAME },
      { ca, serverName: 'rc-redis.elsewhere.svc' },
    ]) {
      const wrong = adminWith(tls);
      try {
        const views = await wrong.observe(pods());
        expect(views.filter((v) => v.nodes !== undefined)).toHaveLength(0);
      } finally {
        wrong.close();
      }
    }
  });

  it('servers with the TLS environment of a server pod deliver across both shards, 0 lost', async () => {
    // The pod's variables, with its mount directory mapped to this test's files.
    const env: Record<string, string> = {
      REDIS_USERNAME: REDIS_USERS.server,
      REDIS_PASSWORD: PASSWORDS.server,
    };
    for (const e of redisClientPodParts(spec).env as { name: string; value: string }[]) {
      if (e.name.startsWith('REDIS_TLS')) env[e.name] = e.value.replace(`${REDIS_TLS_DIR}/ca`, dir);
    }
    expect(env).toMatchObject({
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: files.caFile,
      REDIS_TLS_SERVER_NAME: SERVER_NAME,
    });
    const seeds = nodes.map((n) => ({ host: '127.0.0.1', port: n.ref.port }));
    servers = await Promise.all(
      [0, 1].map(() => fleet.server({ seeds: () => seeds, serverEnv: () => ({}) }, {}, { env })),
    );
    // Two rooms on each shard's slots, by the masters' own view.
    const views = await admin.observe(pods());
    const owner = (slot: number): string | undefined =>
      views.find((v) =>
        v.nodes?.some(
          (n) =>
            n.flags.includes('myself') &&
            n.flags.includes('master') &&
            n.slots.some(([a, b]) => slot >= a && slot <= b),
        ),
      )?.ref.pod;
    const rooms: string[] = [];
    const perOwner = new Map<string, number>();
    for (let i = 0; rooms.length < 4; i++) {
      const room = `tls-room-${i}`;
      const o = owner(calculateSlot(`socket.io#/#${room}#`));
      if (o === undefined || (perOwner.get(o) ?? 0) >= 2) continue;
      perOwner.set(o, (perOwner.get(o) ?? 0) + 1);
      rooms.push(room);
    }
    expect(perOwner.size).toBe(2);
    const traffic = await RoomTraffic.start(servers, rooms, { perRoomPerSecond: 10 });
    await sleep(3000);
    await traffic.stop();
    const report = traffic.report();
    console.log(
      `TLS shards: ${report.sent} sent, ${report.lostDeliveries} deliveries lost, ${report.duplicates} duplicates`,
    );
    expect(report.sent).toBeGreaterThan(0);
    expect(report.lostDeliveries).toBe(0);
    expect(report.duplicates).toBe(0);
  });
});
