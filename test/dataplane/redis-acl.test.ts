import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_USERS } from '../../operator/desired/redis-acl.js';
import { closeAllClients } from './support/clients.js';
import { Fleet, sleep, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import { RoomTraffic } from './support/traffic.js';

// Issue 16 item 6: the operator's Redis ACL layout on a real Redis Cluster (3 masters, 3
// replicas, redis-server processes) with real Socket.IO servers. The fixture starts every node
// with renderRedisAclConf, the same lines a pod's start.sh writes: default user off, and the
// servers log in as socketfleet-server. The servers deliver, a master fails over (its replica
// synced as socketfleet-replication), and no node logged a single ACL denial for a product user;
// the server user is refused everything beyond sharded pub/sub on the adapter's channels.
describe('Redis ACL users on a real Redis Cluster with real servers', () => {
  const fleet = new Fleet('redis-acl');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];

  beforeAll(async () => {
    redis = await fleet.redisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
    servers = await Promise.all([0, 1].map(() => fleet.server(redis)));
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  const login = (port: number, username: string, password: string): Redis => {
    const c = new Redis({
      port,
      host: '127.0.0.1',
      username,
      password,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => undefined);
    return c;
  };

  /** One inline command on a fresh connection that never logs in; the first reply line. */
  const raw = (port: number, command: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => sock.write(command));
      let got = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        got += d;
        if (got.includes('\r\n')) {
          sock.destroy();
          resolve(got.split('\r\n')[0]!);
        }
      });
      sock.on('error', reject);
    });

  /** The error text of a command, or 'OK:<reply>' when Redis ran it. */
  const attempt = async (c: Redis, args: string[]): Promise<string> => {
    try {
      return `OK:${String(await c.call(args[0]!, ...args.slice(1)))}`;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  };

  /** ACL LOG entries (denials) of every running node, for the product's users. */
  const denials = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const [port, node] of redis.nodes) {
      if (!node.running()) continue;
      const log = (await redis.client(port).call('ACL', 'LOG')) as unknown[][];
      for (const entry of log) {
        const f = new Map<string, unknown>();
        for (let i = 0; i + 1 < entry.length; i += 2) f.set(String(entry[i]), entry[i + 1]);
        const user = String(f.get('username'));
        if (Object.values<string>(REDIS_USERS).includes(user)) {
          out.push(`${port} ${user} ${String(f.get('reason'))} ${String(f.get('object'))}`);
        }
      }
    }
    return out;
  };

  it('servers deliver as socketfleet-server, the replicas sync as socketfleet-replication, and no product user is ever denied', async () => {
    const masters = await redis.masterPorts();
    const rooms: string[] = [];
    for (const m of masters) rooms.push(await redis.roomOn(m, `acl${m}`));
    const traffic = await RoomTraffic.start(servers, rooms, { perRoomPerSecond: 10 });
    await sleep(3000);
    await traffic.stop();
    const report = traffic.report();
    expect(report.sent).toBeGreaterThan(0);
    expect(report.lostDeliveries).toBe(0);

    // Every replica's link to its master is up: masteruser/masterauth work.
    const topo = await redis.topology();
    const replicas = topo.filter((n) => n.role === 'replica');
    expect(replicas).toHaveLength(3);
    for (const r of replicas) {
      expect(await redis.client(r.port).info('replication')).toContain('master_link_status:up');
    }
    // The servers' connections are logged in as the server user, never as default.
    for (const m of masters) {
      const clients = String(await redis.client(m).call('CLIENT', 'LIST'));
      const users = new Set([...clients.matchAll(/ user=(\S+)/g)].map((x) => x[1]));
      expect(users.has(REDIS_USERS.server)).toBe(true);
      expect(users.has('default')).toBe(false);
    }
    expect(await denials()).toEqual([]);
  });

  it('the server user may only use sharded pub/sub on socket.io# channels and read the slot map', async () => {
    const port = (await redis.masterPorts())[0]!;
    const asServer = login(port, REDIS_USERS.server, redis.passwords.server);
    try {
      await asServer.connect();
      expect(await attempt(asServer, ['PING'])).toBe('OK:PONG');
      expect(await attempt(asServer, ['CLUSTER', 'SLOTS'])).toMatch(/^OK:/);
      // A channel whose slot this node owns, so the answer is about permission, not MOVED.
      let channel = '';
      for (let i = 0; ; i++) {
        channel = `socket.io#/#acl-probe-${i}#`;
        if ((await redis.ownerOf(calculateSlot(channel))) === port) break;
      }
      expect(await attempt(asServer, ['SPUBLISH', channel, 'x'])).toMatch(/^OK:\d+$/);
      expect(await attempt(asServer, ['PUBSUB', 'SHARDNUMSUB', channel])).toMatch(/^OK:/);
      for (const args of [
        ['FLUSHALL'],
        ['CONFIG', 'GET', 'masterauth'],
        ['CONFIG', 'SET', 'maxclients', '1'],
        ['KEYS', '*'],
        ['SET', 'k', 'v'],
        ['GET', 'k'],
        ['ACL', 'LIST'],
        ['CLUSTER', 'FAILOVER'],
        ['CLUSTER', 'RESET'],
        ['SHUTDOWN'],
        ['PUBLISH', 'socket.io#/#', 'x'],
        ['SPUBLISH', 'other-app', 'x'],
        ['MONITOR'],
      ]) {
        expect(await attempt(asServer, args), args.join(' ')).toMatch(/^NOPERM/);
      }
      // The default user is off: nothing runs without logging in, and it cannot log in.
      expect(await raw(port, 'PING\r\n')).toMatch(/^-NOAUTH/);
      expect(await raw(port, 'AUTH anything\r\n')).toMatch(/^-WRONGPASS/);
      expect(await raw(port, 'AUTH default anything\r\n')).toMatch(/^-WRONGPASS/);
    } finally {
      asServer.disconnect();
    }
    // The test's own denials above were the server user's: clear them for the next check.
    await redis.client(port).call('ACL', 'LOG', 'RESET');
  });

  it('a master failover: the replica takes over and the room on it delivers again, with no ACL denial', async () => {
    const victim = (await redis.masterPorts())[0]!;
    const room = await redis.roomOn(victim, 'acl-failover');
    const slot = calculateSlot(`socket.io#/#${room}#`);
    await redis.nodes.get(victim)!.kill();
    const promoted = await redis.waitPromotion(victim, slot);
    expect(promoted).not.toBe(victim);
    // Give the servers' slot refresh a moment, then traffic on the promoted replica's room.
    await sleep(3000);
    const traffic = await RoomTraffic.start(servers, [room], { perRoomPerSecond: 10 });
    await sleep(3000);
    await traffic.stop();
    const report = traffic.report();
    expect(report.sent).toBeGreaterThan(0);
    expect(report.lostDeliveries).toBe(0);
    expect(await denials()).toEqual([]);
  });

  it('no password is on the command line of any redis-server', () => {
    const passwords = Object.values(redis.passwords);
    let checked = 0;
    for (const [, node] of redis.nodes) {
      if (!node.running()) continue;
      const pid = node.pid();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      expect(cmdline).toContain('redis-server');
      for (const pw of passwords) expect(cmdline).not.toContain(pw);
      checked++;
    }
    expect(checked).toBe(5);
  });
});
