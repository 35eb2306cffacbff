import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { buildServerConfig } from '../desired/server-config.js';
import type { Endpoint } from '../desired/types.js';
import type { Binaries } from './deps.js';
import { Gateway } from './gateway.js';
import { freePort } from './ports.js';
import { localRedisConf, startRedisNode, type RedisNodeProcess } from './redis.js';
import { RedisAdmin, type ObservedPod } from '../reconcile/redis-admin.js';
import { deriveRedisPasswords, REDIS_USERS, type RedisPasswords } from '../desired/redis-acl.js';
import { convergeRedisCluster } from '../reconcile/redis-converge.js';
import type { RedisPlan } from '../desired/redis-planner.js';
import { startServer, type ServerProcess } from './server.js';
import { killLeftovers, runningSupervisor } from './leftovers.js';

export interface LocalClusterOptions {
  stateDir: string;
  gatewayPort: number;
  binaries: Binaries;
  log: (line: string) => void;
  /** Seconds a removed server gets to drain after SIGTERM; defaults to the spec's grace period. */
  drainGraceSeconds?: number;
  /** Servers started at once when scaling up (default 8): dozens of node boots starve small machines. */
  startBatch?: number;
  /** nginx worker_processes; each worker holds at most ~9500 proxied connections under a 20000 nofile limit. */
  nginxWorkers?: number;
  /** Add `reuseport` to the gateway's listen directive (capacity runs with several nginx workers). */
  nginxReuseport?: boolean;
}

export interface StatusRow {
  component: string;
  pid: number | undefined;
  address: string;
  ready: boolean;
}

/** What `up` writes to <state-dir>/status.json for scripts and tests (no secrets). */
export interface LocalStatus {
  name: string;
  url: string | undefined;
  /** Every Redis Cluster node: shard, ordinal (0 starts as the master) and where it listens. */
  redis: { index: number; ordinal: number; pid: number; port: number }[];
  servers: { id: number; pid: number; port: number; opsPort: number }[];
  gateway: { pid: number; port: number } | undefined;
  /** The process that runs this cluster (`up`, or a benchmark); a second one must not take over. */
  supervisorPid: number;
  updatedAt: string;
}

export const PASSWORD_FILE = 'redis.password';
/** The HS256 key of client tokens when spec.auth.mode is jwt (mint tokens with it). */
export const CLIENT_AUTH_KEY_FILE = 'client-auth.key';
export const STATUS_FILE = 'status.json';

/**
 * A RealtimeCluster as local processes, driven level-based like the operator: `apply` compares
 * what runs with what the spec asks for and closes the gap (shards, servers, gateway), rolling
 * servers whose config changed one at a time and reloading nginx only with ready upstreams.
 */
export class LocalCluster {
  private cluster: RealtimeCluster | undefined;
  /** Redis Cluster nodes by pod-like name (`<name>-redis-<shard>-<ordinal>`). */
  private nodes = new Map<string, RedisNodeProcess & { conf: string }>();
  /** Removed shards that still hold slots: they keep running until the planner empties them. */
  private retained: number[] = [];
  private admin: RedisAdmin | undefined;
  /** The last Redis plan, for the status table. */
  private redisPlan: RedisPlan | undefined;
  private servers: ServerProcess[] = [];
  private gateway: Gateway | undefined;
  private passwords: RedisPasswords | undefined;
  private clientAuthKey: string | undefined;
  private nextServerId = 0;
  private stopped = false;
  /** False when start() refused a state dir that another live process runs: never touch it then. */
  private ownsStateDir = false;

  constructor(private readonly opts: LocalClusterOptions) {}

  get stateDir(): string {
    return this.opts.stateDir;
  }

  get url(): string | undefined {
    return this.gateway ? `http://127.0.0.1:${this.gateway.port}` : undefined;
  }

  /** The servers' Redis password (user socketfleet-server), as written to redis.password. */
  get redisPassword(): string | undefined {
    return this.passwords?.server;
  }

  /** The ACL user that password belongs to; undefined without auth (the default user). */
  get redisUsername(): string | undefined {
    return this.passwords ? REDIS_USERS.server : undefined;
  }

  serverPids(): number[] {
    return this.servers.map((s) => s.proc.pid);
  }

  /** The nginx master (its workers are its children); undefined before start or after stop. */
  gatewayPid(): number | undefined {
    return this.gateway?.pid;
  }

  redisPids(): number[] {
    return this.sortedNodes().map((n) => n.proc.pid);
  }

  redisPorts(): number[] {
    return this.sortedNodes().map((n) => n.ref.port);
  }

  private sortedNodes(): (RedisNodeProcess & { conf: string })[] {
    return [...this.nodes.values()].sort(
      (a, b) => a.ref.shard - b.ref.shard || a.ref.ordinal - b.ref.ordinal,
    );
  }

  /** Seeds for the servers: every node of the spec's shards (any one is enough to start). */
  private seeds(cluster: RealtimeCluster): { host: string; port: number }[] {
    return this.sortedNodes()
      .filter((n) => n.ref.shard < cluster.spec.redis.shards)
      .map((n) => ({ host: '127.0.0.1', port: n.ref.port }));
  }

  async start(cluster: RealtimeCluster): Promise<void> {
    mkdirSync(join(this.opts.stateDir, 'logs'), { recursive: true });
    const owner = runningSupervisor(join(this.opts.stateDir, STATUS_FILE));
    if (owner !== undefined) {
      throw new Error(
        `another socketfleet process (pid ${owner}) is running this state dir ${this.opts.stateDir}; stop it or pass --state-dir.`,
      );
    }
    this.ownsStateDir = true;
    killLeftovers(join(this.opts.stateDir, STATUS_FILE), this.opts.stateDir);
    if (cluster.spec.redis.auth.enabled) {
      // The operator's ACL layout, with passwords from a key that lives only in this process.
      this.passwords = deriveRedisPasswords(randomBytes(32), 'socketfleet-up');
      writeFileSync(join(this.opts.stateDir, PASSWORD_FILE), this.passwords.server + '\n', {
        mode: 0o600,
      });
    }
    if (cluster.spec.auth.mode === 'jwt') {
      this.clientAuthKey = randomBytes(48).toString('base64url');
      writeFileSync(join(this.opts.stateDir, CLIENT_AUTH_KEY_FILE), this.clientAuthKey + '\n', {
        mode: 0o600,
      });
    }
    await this.apply(cluster);
  }

  /**
   * What decides whether a running server is current: its config without the seed nodes, so a
   * shards edit (slots move inside Redis) never restarts a server.
   */
  private shardsKey(cluster: RealtimeCluster): string {
    return JSON.stringify(buildServerConfig(cluster, []));
  }

  private endpoints(exclude: Set<ServerProcess> = new Set()): Endpoint[] {
    return this.servers
      .filter((s) => s.ready && s.proc.running && !exclude.has(s))
      .map((s) => ({ ip: '127.0.0.1', port: s.port }));
  }

  private async reloadGateway(
    cluster: RealtimeCluster,
    exclude?: Set<ServerProcess>,
  ): Promise<void> {
    await this.gateway?.reload(cluster, this.endpoints(exclude));
  }

  /** Stops an apply that is still starting processes once stop() began. */
  private check(): void {
    if (this.stopped) throw new Error('stopping');
  }

  private async newServer(cluster: RealtimeCluster, key: string): Promise<ServerProcess> {
    this.check();
    const id = this.nextServerId++;
    const s = await startServer({
      id,
      port: await freePort(),
      opsPort: await freePort(),
      config: buildServerConfig(cluster, this.seeds(cluster)),
      shardsKey: key,
      stateDir: this.opts.stateDir,
      passwordFile: this.passwords ? join(this.opts.stateDir, PASSWORD_FILE) : undefined,
      clientAuthKey: this.clientAuthKey,
    });
    this.opts.log(`server-${id} ready on 127.0.0.1:${s.port} (pid ${s.proc.pid})`);
    return s;
  }

  private async retire(cluster: RealtimeCluster, victims: ServerProcess[]): Promise<void> {
    if (victims.length === 0) return;
    const gone = new Set(victims);
    // Take them out of the gateway first, so no new client lands on a draining server.
    await this.reloadGateway(cluster, gone);
    this.servers = this.servers.filter((s) => !gone.has(s));
    const grace =
      (this.opts.drainGraceSeconds ?? cluster.spec.terminationGracePeriodSeconds) * 1000;
    await Promise.all(
      victims.map(async (s) => {
        this.opts.log(`server-${s.id} draining (SIGTERM)`);
        await s.proc.stop(grace);
        this.opts.log(`server-${s.id} stopped`);
      }),
    );
  }

  /** Closes the gap between the running processes and the spec. Callers serialise calls. */
  async apply(cluster: RealtimeCluster): Promise<void> {
    if (this.stopped) return;
    this.cluster = cluster;

    await this.applyRedis(cluster);

    // Servers that died are replaced below like missing ones.
    const dead = this.servers.filter((s) => !s.proc.running);
    for (const s of dead)
      this.opts.log(`server-${s.id} exited with code ${String(s.proc.exitCode)}; replacing it`);
    this.servers = this.servers.filter((s) => s.proc.running);

    if (this.gateway && this.gateway.pid === undefined) {
      this.opts.log('gateway exited; restarting it');
      await this.gateway.stop();
      this.gateway = undefined;
    }
    if (cluster.spec.gateway.mode === 'managed' && !this.gateway) {
      this.check();
      this.gateway = new Gateway(
        this.opts.binaries.nginx,
        this.opts.stateDir,
        this.opts.gatewayPort,
        this.opts.nginxWorkers ?? 'auto',
        this.opts.nginxReuseport ?? false,
      );
      await this.gateway.start(cluster, this.endpoints());
      this.opts.log(`gateway ready on ${this.url ?? ''} (pid ${this.gateway.pid ?? '?'})`);
    } else if (cluster.spec.gateway.mode === 'none' && this.gateway) {
      await this.gateway.stop();
      this.gateway = undefined;
    }

    // Rolling: one new server up and ready before one stale server goes (surge 1, unavailable 0).
    const key = this.shardsKey(cluster);
    const stale = this.servers.filter((s) => s.shardsKey !== key);
    for (const old of stale) {
      if (this.servers.filter((s) => s.shardsKey === key).length < cluster.spec.replicas) {
        this.servers.push(await this.newServer(cluster, key));
        await this.reloadGateway(cluster);
      }
      await this.retire(cluster, [old]);
    }

    const missing = cluster.spec.replicas - this.servers.length;
    const batch = this.opts.startBatch ?? 8;
    for (let left = missing; left > 0; left -= batch) {
      const started = await Promise.all(
        Array.from({ length: Math.min(batch, left) }, () => this.newServer(cluster, key)),
      );
      this.servers.push(...started);
    }
    await this.reloadGateway(cluster);
    if (this.servers.length > cluster.spec.replicas) {
      // Scale down removes the newest servers, like a ReplicaSet prefers the youngest pods.
      await this.retire(cluster, this.servers.slice(cluster.spec.replicas));
    }

    this.writeStatus();
  }

  private async startNode(
    cluster: RealtimeCluster,
    shard: number,
    ordinal: number,
    fresh: boolean,
  ): Promise<void> {
    this.check();
    const pod = `${cluster.metadata.name}-redis-${shard}-${ordinal}`;
    const old = this.nodes.get(pod);
    const port = old?.ref.port ?? (await freePort());
    const busPort = old?.busPort ?? (await freePort());
    const n = await startRedisNode({
      cluster,
      shard,
      ordinal,
      port,
      busPort,
      stateDir: this.opts.stateDir,
      passwords: this.passwords,
      redisServer: this.opts.binaries.redisServer,
      fresh,
    });
    const conf = localRedisConf(cluster, port, busPort, n.dir, this.passwords);
    this.nodes.set(pod, { ...n, conf });
    this.opts.log(`${pod} ${old ? 'restarted' : 'ready'} on 127.0.0.1:${port} (pid ${n.proc.pid})`);
  }

  /**
   * The same Redis Cluster layout the operator runs, formed and resharded by the same planner:
   * shards x (1 + replicasPerShard) nodes. Dead nodes restart in place (their node id survives
   * in nodes.conf), new shards are joined and filled, removed shards are emptied before they
   * stop, and a changed Redis config rolls one node at a time, replicas first.
   */
  private async applyRedis(cluster: RealtimeCluster): Promise<void> {
    const r = cluster.spec.redis;
    if (r.external)
      throw new Error(
        'spec.redis.external is not supported by up; remove it to run Redis locally.',
      );
    this.admin ??= new RedisAdmin({
      ...(this.passwords
        ? { username: REDIS_USERS.operator, password: this.passwords.operator }
        : {}),
      timeoutMs: 2000,
    });
    const keep = new Set([...Array.from({ length: r.shards }, (_, i) => i), ...this.retained]);
    const starts: Promise<void>[] = [];
    for (const shard of keep) {
      for (let ordinal = 0; ordinal <= r.replicasPerShard; ordinal++) {
        const n = this.nodes.get(`${cluster.metadata.name}-redis-${shard}-${ordinal}`);
        // A node this process never ran starts empty: a nodes.conf left in the state dir (an
        // earlier `up`, or a shard removed and added again) names peers and ports that are gone,
        // and the node would wait for them to fail over instead of joining.
        if (!n) starts.push(this.startNode(cluster, shard, ordinal, true));
        else if (!n.proc.running) {
          this.opts.log(`${n.ref.pod} exited; restarting it on port ${n.ref.port}`);
          starts.push(this.startNode(cluster, shard, ordinal, false));
        }
      }
    }
    await Promise.all(starts);
    const pods = (): ObservedPod[] =>
      this.sortedNodes()
        .filter((n) => keep.has(n.ref.shard) && n.ref.ordinal <= r.replicasPerShard)
        .map((n) => ({
          ref: n.ref,
          outdated:
            n.conf !== localRedisConf(cluster, n.ref.port, n.busPort, n.dir, this.passwords),
        }));
    let lastReason = '';
    const plan = await convergeRedisCluster(
      this.admin,
      { shards: r.shards, replicasPerShard: r.replicasPerShard },
      {
        pods,
        timeoutMs: 120_000,
        stopped: () => this.stopped,
        deletePod: async (pod) => {
          const n = this.nodes.get(pod)!;
          await n.proc.stop(5000);
          await this.startNode(cluster, n.ref.shard, n.ref.ordinal, true);
        },
        onPlan: (p) => {
          if (p.steps.length > 0 && p.reason !== lastReason) this.opts.log(`redis: ${p.reason}`);
          lastReason = p.reason;
        },
      },
    );
    this.redisPlan = plan;
    this.retained = plan.retainedShards;
    if (plan.phase !== 'stable') this.opts.log(`redis: not settled yet: ${plan.reason}`);
    // Nodes no longer wanted: removed shards that are empty, replicas beyond replicasPerShard.
    const wanted = new Set([...Array.from({ length: r.shards }, (_, i) => i), ...this.retained]);
    let stopped = 0;
    for (const n of this.sortedNodes()) {
      if (wanted.has(n.ref.shard) && n.ref.ordinal <= r.replicasPerShard) continue;
      await n.proc.stop(5000);
      this.nodes.delete(n.ref.pod);
      this.opts.log(`${n.ref.pod} stopped`);
      stopped++;
    }
    if (stopped > 0) {
      // The others forget the stopped ids once they see them fail (about one node timeout).
      this.redisPlan = await convergeRedisCluster(
        this.admin,
        { shards: r.shards, replicasPerShard: r.replicasPerShard },
        {
          pods,
          timeoutMs: 30_000,
          stopped: () => this.stopped,
          deletePod: () => Promise.resolve(),
        },
      );
    }
  }

  status(): StatusRow[] {
    const rows: StatusRow[] = [];
    const masters = new Set(this.redisPlan?.shards.map((sh) => sh.master) ?? []);
    for (const n of this.sortedNodes())
      rows.push({
        component: `redis-${n.ref.shard}-${n.ref.ordinal}${masters.has(n.ref.pod) ? ' (master)' : ''}`,
        pid: n.proc.pid,
        address: `127.0.0.1:${n.ref.port}`,
        ready: n.proc.running,
      });
    for (const s of this.servers) {
      rows.push({
        component: `server-${s.id}`,
        pid: s.proc.pid,
        address: `127.0.0.1:${s.port} (ops ${s.opsPort})`,
        ready: s.ready && s.proc.running,
      });
    }
    if (this.gateway)
      rows.push({
        component: 'gateway',
        pid: this.gateway.pid,
        address: this.url ?? '',
        ready: this.gateway.pid !== undefined,
      });
    return rows;
  }

  private writeStatus(): void {
    const status: LocalStatus = {
      name: this.cluster?.metadata.name ?? '',
      url: this.url,
      redis: this.sortedNodes().map((n) => ({
        index: n.ref.shard,
        ordinal: n.ref.ordinal,
        pid: n.proc.pid,
        port: n.ref.port,
      })),
      servers: this.servers.map((s) => ({
        id: s.id,
        pid: s.proc.pid,
        port: s.port,
        opsPort: s.opsPort,
      })),
      gateway:
        this.gateway?.pid !== undefined
          ? { pid: this.gateway.pid, port: this.gateway.port }
          : undefined,
      supervisorPid: process.pid,
      updatedAt: new Date().toISOString(),
    };
    const p = join(this.opts.stateDir, STATUS_FILE);
    writeFileSync(`${p}.tmp`, JSON.stringify(status, null, 2) + '\n');
    renameSync(`${p}.tmp`, p);
  }

  /** Gateway first (clients leave), then servers, then Redis; SIGKILL after short graces. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.gateway?.stop();
    this.gateway = undefined;
    await Promise.all(this.servers.map((s) => s.proc.stop(5000)));
    this.servers = [];
    this.admin?.close();
    await Promise.all([...this.nodes.values()].map((n) => n.proc.stop(5000)));
    this.nodes.clear();
    if (!this.ownsStateDir) return;
    try {
      writeFileSync(
        join(this.opts.stateDir, STATUS_FILE),
        JSON.stringify({ stoppedAt: new Date().toISOString() }) + '\n',
      );
    } catch {
      // the state dir may be gone
    }
  }
}

export function readStatus(stateDir: string): LocalStatus {
  return JSON.parse(readFileSync(join(stateDir, STATUS_FILE), 'utf8')) as LocalStatus;
}
