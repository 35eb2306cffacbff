import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import {
  deriveRedisPasswords,
  REDIS_USERS,
  renderRedisAclConf,
  type RedisPasswords,
} from '../../../operator/desired/redis-acl.js';
import { freePort, sleep, until } from './fleet.js';

/**
 * The fixture's own user, for what tests do besides the product (redis-cli --cluster, key writes,
 * INFO probes); the product's users are the operator's (default off, server, operator,
 * replication), so servers and failovers here run with exactly the rules pods get.
 */
export const FIXTURE_USER = 'fixture';

/** What the fixture needs from the Fleet: spawning a process it will kill at the end. */
export interface Spawner {
  dir: string;
  spawn(
    name: string,
    command: string,
    args: string[],
  ): { child: ChildProcess; exited: Promise<unknown> };
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id for a replica. */
  masterId: string | undefined;
  failed: boolean;
  slots: number;
}

export interface ClusterNodeProcess {
  port: number;
  /** SIGKILL, no save: what a node failure looks like to clients. */
  kill(): Promise<void>;
  /** SIGTERM: a graceful shutdown, as a pod's rolling restart does it. */
  stop(): Promise<void>;
  /** Starts the node again on its port with its nodes.conf, so it rejoins with its identity. */
  restart(): Promise<void>;
  running(): boolean;
  /** The process id of the running redis-server. */
  pid(): number | undefined;
}

/**
 * A real Redis Cluster for tests: redis-server processes in cluster mode on loopback, formed
 * with `redis-cli --cluster create`, and changed with redis-cli's own add-node, reshard,
 * rebalance, del-node and CLUSTER FAILOVER. A fixture only: the product's formation logic is
 * the operator's. Nodes announce the host name `localhost`, as the operator's pods announce
 * their StatefulSet DNS names, so clients see host names in CLUSTER SLOTS.
 */
export class RedisClusterFixture {
  readonly nodes = new Map<number, ClusterNodeProcess>();
  private readonly clients: (Redis | Cluster)[] = [];
  /** The product users' passwords (derived like the operator does, from a test key). */
  readonly passwords: RedisPasswords;
  private readonly aclFile: string;

  constructor(
    private readonly spawner: Spawner,
    /** The fixture user's password. */
    readonly password: string,
    readonly nodeTimeoutMs: number,
  ) {
    this.passwords = deriveRedisPasswords(Buffer.from(password.padEnd(32, '.')), 'fixture');
    this.aclFile = join(
      spawner.dir,
      `acl-${process.pid}-${Math.random().toString(36).slice(2)}.conf`,
    );
    writeFileSync(
      this.aclFile,
      renderRedisAclConf(this.passwords) + `user ${FIXTURE_USER} on >${password} ~* &* +@all\n`,
      { mode: 0o600 },
    );
  }

  /** How a Socket.IO server logs in: the product's server user. */
  serverLogin(): { redisUsername: string; redisPassword: string } {
    return { redisUsername: REDIS_USERS.server, redisPassword: this.passwords.server };
  }

  /** The same login as environment variables of a server process. */
  serverEnv(): Record<string, string> {
    return { REDIS_USERNAME: REDIS_USERS.server, REDIS_PASSWORD: this.passwords.server };
  }

  /** Seed addresses for server.json: host names, like the operator's StatefulSet DNS names. */
  seeds(): { host: string; port: number }[] {
    return [...this.nodes.keys()].map((port) => ({ host: 'localhost', port }));
  }

  async startNode(): Promise<ClusterNodeProcess> {
    const port = await freePort();
    const name = `redis-${port}`;
    let current: { child: ChildProcess; exited: Promise<unknown> };
    const start = async (): Promise<void> => {
      current = this.spawner.spawn(name, 'redis-server', [
        // The ACL users and the replicas' masteruser/masterauth, in a file only we can read.
        this.aclFile,
        '--port',
        String(port),
        '--bind',
        '127.0.0.1 -::1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(this.nodeTimeoutMs),
        // One slot without a master must not stop the others (the product's setting too).
        '--cluster-require-full-coverage',
        'no',
        '--cluster-announce-hostname',
        'localhost',
        '--cluster-preferred-endpoint-type',
        'hostname',
        // A replica's first sync starts at once instead of after the default 5 s.
        '--repl-diskless-sync-delay',
        '0',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.spawner.dir,
        '--daemonize',
        'no',
      ]);
      await until(`redis on port ${port}`, async () => {
        if (current.child.exitCode !== null)
          throw new Error(
            `redis-server exited: ${readFileSync(join(this.spawner.dir, `${name}.log`), 'utf8')}`,
          );
        const probe = this.probe(port);
        try {
          return (await probe.ping().catch(() => '')) === 'PONG';
        } finally {
          probe.disconnect();
        }
      });
    };
    await start();
    const node: ClusterNodeProcess = {
      port,
      kill: async () => {
        current.child.kill('SIGKILL');
        await current.exited;
      },
      stop: async () => {
        current.child.kill('SIGTERM');
        await current.exited;
      },
      restart: start,
      running: () => current.child.exitCode === null && current.child.signalCode === null,
      pid: () => current.child.pid,
    };
    this.nodes.set(port, node);
    return node;
  }

  private probe(port: number): Redis {
    const c = new Redis({
      port,
      host: '127.0.0.1',
      username: FIXTURE_USER,
      password: this.password,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    c.on('error', () => undefined);
    return c;
  }

  /** A plain client of one node (closed at the end). */
  client(port: number): Redis {
    const c = new Redis({
      port,
      host: '127.0.0.1',
      username: FIXTURE_USER,
      password: this.password,
    });
    c.on('error', () => undefined);
    this.clients.push(c);
    return c;
  }

  /** A cluster client with sharded subscribers (SSUBSCRIBE/SPUBLISH follow the slots); closed at the end. */
  clusterClient(): Cluster {
    const c = new Cluster(this.seeds(), {
      shardedSubscribers: true,
      slotsRefreshInterval: 1000,
      dnsLookup: (address, callback) => callback(null, address),
      redisOptions: { username: FIXTURE_USER, password: this.password },
    });
    c.on('error', () => undefined);
    this.clients.push(c);
    return c;
  }

  /**
   * Runs redis-cli with the password; throws with its output when it fails. Asynchronous, so
   * traffic and probes in the test process keep running while slots move.
   */
  async cli(args: string[]): Promise<string> {
    // The password through the environment of redis-cli only (REDISCLI_AUTH), not its argv.
    const child = spawn('redis-cli', ['--user', FIXTURE_USER, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDISCLI_AUTH: this.password },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    if (code !== 0 || /\[ERR\]/.test(out)) {
      throw new Error(`redis-cli ${args.join(' ')} failed:\n${out}\n${err}`);
    }
    return out;
  }

  private livePort(): number {
    for (const [port, node] of this.nodes) if (node.running()) return port;
    throw new Error('no Redis node is running.');
  }

  /** CLUSTER NODES as seen by a running node. */
  async topology(fromPort = this.livePort()): Promise<ClusterNodeInfo[]> {
    const c = this.probe(fromPort);
    try {
      const text = String(await c.call('CLUSTER', 'NODES'));
      return text
        .trim()
        .split('\n')
        .map((line) => {
          const [id, addr, flags, master, , , , , ...slotRanges] = line.split(' ');
          let slots = 0;
          for (const r of slotRanges) {
            if (r.startsWith('[')) continue;
            const [a, b] = r.split('-').map(Number);
            slots += (b ?? a!) - a! + 1;
          }
          return {
            id: id!,
            port: Number(/:(\d+)@/.exec(addr!)?.[1]),
            role: flags!.includes('master') ? ('master' as const) : ('replica' as const),
            masterId: master === '-' ? undefined : master,
            failed: /fail/.test(flags!),
            slots,
          };
        });
    } finally {
      c.disconnect();
    }
  }

  async nodeId(port: number): Promise<string> {
    const c = this.probe(port);
    try {
      return String(await c.call('CLUSTER', 'MYID'));
    } finally {
      c.disconnect();
    }
  }

  /** The port of the master that owns `slot`, as a running node sees it. */
  async ownerOf(slot: number): Promise<number> {
    const c = this.probe(this.livePort());
    try {
      const shards = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      for (const [from, to, master] of shards) if (slot >= from && slot <= to) return master[1];
      throw new Error(`slot ${slot} has no owner.`);
    } finally {
      c.disconnect();
    }
  }

  /** SPUBLISH calls executed by the node on `port` (INFO commandstats). */
  async spublishCalls(port: number): Promise<number> {
    const c = this.probe(port);
    try {
      const m = /cmdstat_spublish:calls=(\d+)/.exec(await c.info('commandstats'));
      return m ? Number(m[1]) : 0;
    } finally {
      c.disconnect();
    }
  }

  /** SPUBLISH calls executed by every running node together. */
  async totalSpublishCalls(): Promise<number> {
    let sum = 0;
    for (const [port, node] of this.nodes)
      if (node.running()) sum += await this.spublishCalls(port);
    return sum;
  }

  /** Bytes every running node received and sent (INFO stats). */
  async netBytes(): Promise<number> {
    let sum = 0;
    for (const [port, node] of this.nodes) {
      if (!node.running()) continue;
      const c = this.probe(port);
      try {
        const info = await c.info('stats');
        sum +=
          Number(/total_net_input_bytes:(\d+)/.exec(info)![1]) +
          Number(/total_net_output_bytes:(\d+)/.exec(info)![1]);
      } finally {
        c.disconnect();
      }
    }
    return sum;
  }

  /** CPU seconds (user + system) every running node has used (INFO cpu). */
  async cpuSeconds(): Promise<number> {
    let sum = 0;
    for (const [port, node] of this.nodes) {
      if (!node.running()) continue;
      const c = this.probe(port);
      try {
        const info = await c.info('cpu');
        sum +=
          Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) +
          Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
      } finally {
        c.disconnect();
      }
    }
    return sum;
  }

  /** One command on the node on `port`. */
  async call(port: number, ...args: (string | number)[]): Promise<unknown> {
    const c = this.probe(port);
    try {
      return await c.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      c.disconnect();
    }
  }

  /** Subscribers of a shard channel on the node on `port` (PUBSUB SHARDNUMSUB). */
  async shardNumSub(port: number, channel: string): Promise<number> {
    const c = this.probe(port);
    try {
      const reply = (await c.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
      return Number(reply[1]);
    } finally {
      c.disconnect();
    }
  }

  /**
   * Connections on every running node that hold shard subscriptions (CLIENT LIST's ssub) but
   * are not an ioredis sharded subscriber (named `ssubscriber`): Redis counts such a connection
   * as a receiver of SPUBLISH while the client that owns it never hands the messages on.
   */
  async strayShardSubscribers(): Promise<string[]> {
    const stray: string[] = [];
    for (const node of this.nodes.values()) {
      if (!node.running()) continue;
      const c = this.probe(node.port);
      try {
        const list = String(await c.call('CLIENT', 'LIST'));
        for (const line of list.split('\n')) {
          const ssub = Number(/ ssub=(\d+)/.exec(line)?.[1] ?? 0);
          const name = / name=(\S*)/.exec(line)?.[1] ?? '';
          if (ssub > 0 && !name.includes('ssubscriber')) stray.push(`${node.port}: ${line.trim()}`);
        }
      } finally {
        c.disconnect();
      }
    }
    return stray;
  }

  /** The owner's port of each of the 16384 slots (0 for an uncovered slot). */
  async slotOwners(): Promise<number[]> {
    const owners = new Array<number>(16384).fill(0);
    const c = this.probe(this.livePort());
    try {
      const shards = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      for (const [from, to, master] of shards) owners.fill(master[1], from, to + 1);
      return owners;
    } finally {
      c.disconnect();
    }
  }

  /** The port of the master that owns `channel`'s slot. */
  async slotOwnerOf(channel: string): Promise<number> {
    return (await this.slotOwners())[calculateSlot(channel)]!;
  }

  /** Ports of the masters that own slots. */
  async masterPorts(): Promise<number[]> {
    return [...new Set((await this.slotOwners()).filter((p) => p !== 0))].sort();
  }

  /** First room name `<prefix>-<i>` whose channel's slot is owned by the master on `port`. */
  async roomOn(port: number, prefix: string): Promise<string> {
    const owners = await this.slotOwners();
    for (let i = 0; ; i++) {
      const room = `${prefix}-${i}`;
      if (owners[calculateSlot(`socket.io#/#${room}#`)] === port) return room;
    }
  }

  /** Starts `masters` + `masters * replicasPerMaster` nodes and forms them into one cluster. */
  async create(masters: number, replicasPerMaster: number): Promise<void> {
    const started = await Promise.all(
      Array.from({ length: masters * (1 + replicasPerMaster) }, () => this.startNode()),
    );
    if (masters >= 3) {
      await this.cli([
        '--cluster',
        'create',
        ...started.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ]);
    } else {
      // redis-cli refuses fewer than 3 masters; Redis itself does not.
      await this.formByHand(
        started.map((n) => n.port),
        masters,
      );
    }
    await this.waitHealthy();
  }

  /** CLUSTER MEET, slots split evenly over the first `masters` nodes, the rest replicate them in turn. */
  private async formByHand(ports: number[], masters: number): Promise<void> {
    const first = this.probe(ports[0]!);
    try {
      for (const port of ports.slice(1)) await first.call('CLUSTER', 'MEET', '127.0.0.1', port);
    } finally {
      first.disconnect();
    }
    const per = Math.ceil(16384 / masters);
    for (let i = 0; i < masters; i++) {
      const c = this.probe(ports[i]!);
      try {
        await c.call('CLUSTER', 'ADDSLOTSRANGE', i * per, Math.min(16383, (i + 1) * per - 1));
      } finally {
        c.disconnect();
      }
    }
    await until('every node to know every other', async () => {
      for (const port of ports)
        if ((await this.topology(port)).filter((n) => !n.failed).length !== ports.length)
          return false;
      return true;
    });
    for (const [j, port] of ports.slice(masters).entries()) {
      const masterId = await this.nodeId(ports[j % masters]!);
      const c = this.probe(port);
      try {
        await c.call('CLUSTER', 'REPLICATE', masterId);
      } finally {
        c.disconnect();
      }
    }
  }

  /**
   * Every running node says cluster_state:ok, agrees on the masters, and every replica's link to
   * its master is up (so a failover has an up-to-date replica to promote).
   */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await until(
      'the Redis Cluster to be healthy',
      async () => {
        for (const [port, node] of this.nodes) {
          if (!node.running()) continue;
          const c = this.probe(port);
          try {
            const info = String(await c.call('CLUSTER', 'INFO'));
            if (!info.includes('cluster_state:ok')) return false;
            const repl = await c.info('replication');
            if (repl.includes('role:slave') && !repl.includes('master_link_status:up'))
              return false;
          } finally {
            c.disconnect();
          }
        }
        const topo = await this.topology();
        const running = [...this.nodes.values()].filter((n) => n.running()).length;
        return topo.filter((n) => !n.failed).length === running;
      },
      timeoutMs,
    );
  }

  /** Adds a new empty master (CLUSTER MEET through redis-cli add-node). */
  async addMaster(): Promise<ClusterNodeProcess> {
    const node = await this.startNode();
    await this.cli([
      '--cluster',
      'add-node',
      `127.0.0.1:${node.port}`,
      `127.0.0.1:${this.livePort()}`,
    ]);
    await this.waitKnown(node.port);
    // Until the new node has learned every slot's owner it answers CLUSTERDOWN, and a MIGRATE
    // into it fails mid-slot (seen as a rebalance that left a slot open).
    await until(`node ${node.port} to see the cluster ok`, async () => {
      const probe = this.probe(node.port);
      try {
        return /cluster_state:ok/.test(String(await probe.call('CLUSTER', 'INFO')));
      } finally {
        probe.disconnect();
      }
    });
    return node;
  }

  /** Adds a new replica of the master on `masterPort`. */
  async addReplica(masterPort: number): Promise<ClusterNodeProcess> {
    const node = await this.startNode();
    const masterId = await this.nodeId(masterPort);
    await this.cli([
      '--cluster',
      'add-node',
      `127.0.0.1:${node.port}`,
      `127.0.0.1:${masterPort}`,
      '--cluster-slave',
      '--cluster-master-id',
      masterId,
    ]);
    await this.waitKnown(node.port);
    return node;
  }

  private async waitKnown(port: number): Promise<void> {
    await until(`node ${port} to be known to every node`, async () => {
      for (const [p, n] of this.nodes) {
        if (!n.running()) continue;
        if (!(await this.topology(p)).some((t) => t.port === port)) return false;
      }
      return true;
    });
  }

  /** Spreads the slots evenly over every master, empty ones included (redis-cli rebalance). */
  async rebalance(weights: Record<string, number> = {}): Promise<void> {
    const args = ['--cluster', 'rebalance', `127.0.0.1:${this.livePort()}`];
    if (Object.keys(weights).length === 0) args.push('--cluster-use-empty-masters');
    for (const [id, w] of Object.entries(weights)) args.push('--cluster-weight', `${id}=${w}`);
    // redis-cli refuses to start while the nodes still disagree about a fresh change
    // ("Nodes don't agree about configuration"); that settles within a few seconds.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.cli(args);
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        console.warn(`rebalance attempt ${attempt} failed: ${String(err)}`);
        await sleep(1000);
      }
    }
  }

  /**
   * Moves one slot (holding no keys) to the master on `toPort` with CLUSTER SETSLOT, the way
   * redis-cli does it: IMPORTING on the target, MIGRATING on the source, then NODE on both.
   */
  async moveSlot(slot: number, toPort: number): Promise<void> {
    const fromPort = await this.ownerOf(slot);
    if (fromPort === toPort) return;
    const [fromId, toId] = [await this.nodeId(fromPort), await this.nodeId(toPort)];
    const [from, to] = [this.probe(fromPort), this.probe(toPort)];
    try {
      await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    } finally {
      from.disconnect();
      to.disconnect();
    }
    await until(
      `slot ${slot} to be owned by ${toPort}`,
      async () => (await this.ownerOf(slot)) === toPort,
    );
  }

  /** Moves every slot off the master on `port`, then removes it and its replicas from the cluster. */
  async removeMaster(port: number): Promise<void> {
    const id = await this.nodeId(port);
    await this.rebalance({ [id]: 0 });
    await until(`master ${port} to hold no slot`, async () => {
      const me = (await this.topology()).find((n) => n.id === id);
      return me?.slots === 0;
    });
    const replicas = (await this.topology()).filter((n) => n.masterId === id);
    for (const r of replicas) await this.removeNode(r.port);
    await this.removeNode(port);
  }

  private async removeNode(port: number): Promise<void> {
    const id = await this.nodeId(port);
    const other = [...this.nodes.keys()].find((p) => p !== port && this.nodes.get(p)!.running());
    await this.cli(['--cluster', 'del-node', `127.0.0.1:${other}`, id]);
    const node = this.nodes.get(port);
    this.nodes.delete(port);
    // del-node shuts the node down; make sure the process is gone.
    if (node?.running()) await node.kill();
  }

  /** CLUSTER FAILOVER on the replica on `replicaPort`: a manual, lossless switch of roles. */
  async failover(replicaPort: number): Promise<void> {
    const c = this.probe(replicaPort);
    try {
      await c.call('CLUSTER', 'FAILOVER');
      await until(`replica ${replicaPort} to become master`, async () => {
        const repl = await c.info('replication');
        return repl.includes('role:master');
      });
    } finally {
      c.disconnect();
    }
  }

  /** [master, its replicas] ports for every master that owns slots. */
  async shards(): Promise<{ master: number; replicas: number[] }[]> {
    const topo = await this.topology();
    return topo
      .filter((n) => n.role === 'master' && n.slots > 0 && !n.failed)
      .map((m) => ({
        master: m.port,
        replicas: topo.filter((r) => r.masterId === m.id && !r.failed).map((r) => r.port),
      }));
  }

  /** Waits until a replica has taken over the slots of the dead master on `deadPort`. */
  async waitPromotion(deadPort: number, slot: number): Promise<number> {
    return until(
      `a replica to take over slot ${slot} from ${deadPort}`,
      async () => {
        const owner = await this.ownerOf(slot);
        return owner !== deadPort ? owner : false;
      },
      60_000,
    );
  }

  close(): void {
    for (const c of this.clients) c.disconnect();
  }
}
