import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { buildServerConfig } from '../desired/server-config.js';
import type { Endpoint } from '../desired/types.js';
import type { Binaries } from './deps.js';
import { Gateway } from './gateway.js';
import { freePort } from './ports.js';
import { startRedisShard, type RedisShardProcess } from './redis.js';
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
  redis: { index: number; pid: number; port: number }[];
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
  private shards: RedisShardProcess[] = [];
  private servers: ServerProcess[] = [];
  private gateway: Gateway | undefined;
  private password: string | undefined;
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

  get redisPassword(): string | undefined {
    return this.password;
  }

  serverPids(): number[] {
    return this.servers.map((s) => s.proc.pid);
  }

  redisPorts(): number[] {
    return this.shards.map((s) => s.port);
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
      this.password = randomBytes(24).toString('base64url');
      writeFileSync(join(this.opts.stateDir, PASSWORD_FILE), this.password + '\n', { mode: 0o600 });
    }
    if (cluster.spec.auth.mode === 'jwt') {
      this.clientAuthKey = randomBytes(48).toString('base64url');
      writeFileSync(join(this.opts.stateDir, CLIENT_AUTH_KEY_FILE), this.clientAuthKey + '\n', {
        mode: 0o600,
      });
    }
    await this.apply(cluster);
  }

  private shardsKey(cluster: RealtimeCluster): string {
    const shards = this.shards
      .slice(0, cluster.spec.redis.shards)
      .map((s) => ({ host: '127.0.0.1', port: s.port }));
    return JSON.stringify(buildServerConfig(cluster, shards));
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
    const shards = this.shards
      .slice(0, cluster.spec.redis.shards)
      .map((s) => ({ host: '127.0.0.1', port: s.port }));
    const s = await startServer({
      id,
      port: await freePort(),
      opsPort: await freePort(),
      config: buildServerConfig(cluster, shards),
      shardsKey: key,
      stateDir: this.opts.stateDir,
      password: this.password,
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
    const want = cluster.spec.redis.shards;

    // Shards: restart dead ones in place, then add missing ones.
    for (let i = 0; i < this.shards.length; i++) {
      const sh = this.shards[i]!;
      if (!sh.proc.running) {
        this.opts.log(`redis-${i} exited; restarting it on port ${sh.port}`);
        this.check();
        this.shards[i] = await startRedisShard({
          cluster,
          index: i,
          port: sh.port,
          stateDir: this.opts.stateDir,
          password: this.password,
          redisServer: this.opts.binaries.redisServer,
        });
      }
    }
    while (this.shards.length < want) {
      const index = this.shards.length;
      this.check();
      const sh = await startRedisShard({
        cluster,
        index,
        port: await freePort(),
        stateDir: this.opts.stateDir,
        password: this.password,
        redisServer: this.opts.binaries.redisServer,
      });
      this.shards.push(sh);
      this.opts.log(`redis-${index} ready on 127.0.0.1:${sh.port} (pid ${sh.proc.pid})`);
    }

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

    // Shards beyond the spec go only after no server uses them any more.
    while (this.shards.length > want) {
      const sh = this.shards.pop()!;
      await sh.proc.stop(5000);
      this.opts.log(`redis-${sh.index} stopped`);
    }
    this.writeStatus();
  }

  status(): StatusRow[] {
    const rows: StatusRow[] = [];
    for (const s of this.shards)
      rows.push({
        component: `redis-${s.index}`,
        pid: s.proc.pid,
        address: `127.0.0.1:${s.port}`,
        ready: s.proc.running,
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
      redis: this.shards.map((s) => ({ index: s.index, pid: s.proc.pid, port: s.port })),
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
    await Promise.all(this.shards.map((s) => s.proc.stop(5000)));
    this.shards = [];
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
