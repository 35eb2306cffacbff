import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import type { RedisPodRef } from '../desired/redis.js';
import { parseClusterNodes } from '../desired/redis-nodes.js';
import type { RedisPodView, RedisStep } from '../desired/redis-planner.js';

/**
 * The I/O half of Redis Cluster management: reads what each pod reports and carries out one
 * planner step. Every step is safe to repeat, because a crashed or timed-out step is simply
 * planned again from what the nodes report next time.
 */

/** An ACL login: the operator's own user, or (no username) the default user. */
export interface RedisLogin {
  username?: string | undefined;
  password: string;
}

export interface RedisAdminOptions {
  username?: string | undefined;
  password?: string | undefined;
  /** Per connection attempt and per command. */
  timeoutMs?: number;
  /** Seconds MIGRATE may take per batch of keys. */
  migrateTimeoutMs?: number;
  /** TLS to every node (spec.redis.tls); plain TCP when unset. */
  tls?: RedisAdminTls | undefined;
}

/**
 * The operator's side of spec.redis.tls: the public CA bundle and the one name every node
 * certificate carries. No client certificate: the operator reads no Secret, and the nodes ask
 * for none (tls-auth-clients optional); its login is the ACL password.
 */
export interface RedisAdminTls {
  ca: string;
  serverName: string;
}

export interface ObservedPod {
  ref: RedisPodRef;
  outdated: boolean;
  /** The pod IP when known (Kubernetes): connect and MEET there, no DNS needed. */
  ip?: string | undefined;
}

/** Where to reach a node: its IP once known, else the name it announces. */
function addr(v: RedisPodView): { host: string; port: number } {
  return { host: v.ip ?? v.ref.host, port: v.ref.port };
}

/** Replies that mean "already done" when a step is repeated. */
const ALREADY = [
  /already the owner/i,
  /Unknown node/i,
  /can't forget my master/i,
  /forget myself/i,
];

/** Redis gives a manual failover 5 s (CLUSTER_MF_TIMEOUT); waiting a little longer sees its end. */
const FAILOVER_WAIT_MS = 6000;

export class RedisAdmin {
  private readonly clients = new Map<string, Redis>();
  private readonly timeoutMs: number;
  /** Last observe(): nodes asked, and how many refused the login (WRONGPASS). */
  private asked = 0;
  private refused = 0;
  /** The last connection error per node (host:port), e.g. WRONGPASS from the login. */
  private readonly lastErrors = new Map<string, string>();

  constructor(private readonly opts: RedisAdminOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 3000;
  }

  private client(ref: { host: string; port: number }): Redis {
    const key = `${ref.host}:${ref.port}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new Redis({
        host: ref.host,
        port: ref.port,
        ...(this.opts.password !== undefined ? { password: this.opts.password } : {}),
        ...(this.opts.username !== undefined ? { username: this.opts.username } : {}),
        // Nodes are reached by IP; the certificate is checked against the shared server name.
        ...(this.opts.tls
          ? { tls: { ca: this.opts.tls.ca, servername: this.opts.tls.serverName } }
          : {}),
        lazyConnect: true,
        connectTimeout: this.timeoutMs,
        commandTimeout: this.timeoutMs,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: true,
        // One attempt per use: a pod that is down is reported as such, not retried in the background.
        retryStrategy: () => null,
      });
      // Failures surface on the command that hit them ("Connection is closed" for a refused
      // login); the event keeps the reason, and stops an unhandled crash.
      c.on('error', (err: Error) => this.lastErrors.set(key, err.message));
      this.clients.set(key, c);
    }
    return c;
  }

  private drop(ref: { host: string; port: number }): void {
    const key = `${ref.host}:${ref.port}`;
    this.clients.get(key)?.disconnect();
    this.clients.delete(key);
  }

  private async call(
    ref: { host: string; port: number },
    ...args: (string | number)[]
  ): Promise<unknown> {
    const c = this.client(ref);
    try {
      if (c.status === 'wait' || c.status === 'end' || c.status === 'close') await c.connect();
      return await c.call(String(args[0]), ...args.slice(1).map(String));
    } catch (err) {
      if (!(err instanceof Error) || !/^(ERR|MOVED|ASK|CLUSTERDOWN)/.test(err.message))
        this.drop(ref);
      throw err;
    }
  }

  /** What each pod reports; a pod that does not answer is reported with no nodes. */
  async observe(pods: ObservedPod[]): Promise<RedisPodView[]> {
    this.asked = pods.length;
    this.refused = 0;
    this.lastErrors.clear();
    return Promise.all(
      pods.map(async (p): Promise<RedisPodView> => {
        const view: RedisPodView = {
          ref: p.ref,
          ip: undefined,
          nodes: undefined,
          masterLinkUp: false,
          outdated: p.outdated,
        };
        try {
          view.ip = p.ip ?? (isIP(p.ref.host) ? p.ref.host : (await lookup(p.ref.host)).address);
          const at = addr(view);
          const nodes = (await this.call(at, 'CLUSTER', 'NODES')) as string;
          const info = (await this.call(at, 'CLUSTER', 'INFO')) as string;
          const repl = (await this.call(at, 'INFO', 'replication')) as string;
          view.nodes = parseClusterNodes(nodes);
          view.clusterState = /cluster_state:(\w+)/.exec(info)?.[1];
          view.masterLinkUp = /master_link_status:up/.test(repl);
        } catch (err) {
          view.nodes = undefined;
          const at = view.ip !== undefined ? addr(view) : p.ref;
          const reason = `${err instanceof Error ? err.message : ''} ${this.lastErrors.get(`${at.host}:${at.port}`) ?? ''}`;
          if (/WRONGPASS/.test(reason)) this.refused++;
        }
        return view;
      }),
    );
  }

  /**
   * Carries out one step. `pods` maps pod names to where they answer; `deletePod` restarts a pod
   * (the caller's job: the API server in Kubernetes, a process locally).
   */
  async execute(
    step: RedisStep,
    pods: ReadonlyMap<string, RedisPodView>,
    deletePod: (pod: string) => Promise<void>,
  ): Promise<void> {
    const at = (name: string): RedisPodView => {
      const v = pods.get(name);
      if (!v) throw new Error(`the planner named pod ${name}, which was not observed`);
      return v;
    };
    switch (step.kind) {
      case 'meet':
        await this.call(addr(at(step.via)), 'CLUSTER', 'MEET', step.ip, step.port, step.busPort);
        return;
      case 'forget':
        // Every node must forget within the same minute, or gossip brings the id back.
        await Promise.all(
          [...pods.values()]
            .filter((v) => v.nodes !== undefined)
            .flatMap((v) => step.ids.map((id) => this.tolerant(addr(v), 'CLUSTER', 'FORGET', id))),
        );
        return;
      case 'stableSlot':
        await this.call(addr(at(step.pod)), 'CLUSTER', 'SETSLOT', step.slot, 'STABLE');
        return;
      case 'addSlots':
        await this.call(
          addr(at(step.pod)),
          'CLUSTER',
          'ADDSLOTSRANGE',
          ...step.ranges.flatMap(([a, b]) => [a, b]),
        );
        return;
      case 'replicate':
        await this.call(addr(at(step.pod)), 'CLUSTER', 'REPLICATE', step.masterId);
        return;
      case 'moveSlots':
        await this.moveSlots(at(step.from), at(step.to), step.fromId, step.toId, step.slots);
        return;
      case 'failover':
        // Coordinated: the replica waits until it has the master's whole stream, then takes
        // over. TAKEOVER (the master is gone and no quorum can vote) skips both.
        if (step.takeover) await this.call(addr(at(step.pod)), 'CLUSTER', 'FAILOVER', 'TAKEOVER');
        else await this.call(addr(at(step.pod)), 'CLUSTER', 'FAILOVER');
        // CLUSTER FAILOVER answers before the replica has taken over, and a second one restarts
        // a manual failover in progress: a caller that planned again at once (every 200 ms in
        // `up`) kept a loaded shard from ever finishing it. Wait for the promotion, bounded.
        await this.untilMaster(addr(at(step.pod)), FAILOVER_WAIT_MS);
        return;
      case 'deletePod':
        await deletePod(step.pod);
        return;
    }
  }

  /** Polls ROLE until the node is a master or `timeoutMs` passed (then the next plan decides). */
  private async untilMaster(ref: { host: string; port: number }, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const role = (await this.call(ref, 'ROLE').catch(() => undefined)) as unknown[] | undefined;
      if (role?.[0] === 'master') return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async tolerant(
    ref: { host: string; port: number },
    ...args: (string | number)[]
  ): Promise<void> {
    try {
      await this.call(ref, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !ALREADY.some((re) => re.test(err.message))) throw err;
    }
  }

  /**
   * Redis's own slot migration, one phase at a time for the whole batch (each phase one
   * pipeline): IMPORTING on the target, MIGRATING on the source, keys moved with MIGRATE,
   * then NODE on the target (it bumps its epoch) and on the source. A slot the target already
   * owns only needs the source told.
   */
  private async moveSlots(
    from: RedisPodView,
    to: RedisPodView,
    fromId: string,
    toId: string,
    slots: number[],
  ): Promise<void> {
    const targetNodes = parseClusterNodes(
      (await this.call(addr(to), 'CLUSTER', 'NODES')) as string,
    );
    const owned = new Set<number>();
    for (const n of targetNodes) {
      if (!n.flags.includes('myself')) continue;
      for (const [a, b] of n.slots) for (let s = a; s <= b; s++) owned.add(s);
    }
    const open = slots.filter((s) => !owned.has(s));
    await this.batch(
      addr(to),
      open.map((s) => ['CLUSTER', 'SETSLOT', s, 'IMPORTING', fromId]),
      true,
    );
    await this.batch(
      addr(from),
      open.map((s) => ['CLUSTER', 'SETSLOT', s, 'MIGRATING', toId]),
      true,
    );
    const counts = await this.batch(
      addr(from),
      open.map((s) => ['CLUSTER', 'COUNTKEYSINSLOT', s]),
      false,
    );
    for (let i = 0; i < open.length; i++) {
      if (Number(counts[i]) > 0) await this.migrateKeys(from, to, open[i]!);
    }
    await this.batch(
      addr(to),
      open.map((s) => ['CLUSTER', 'SETSLOT', s, 'NODE', toId]),
      false,
    );
    await this.batch(
      addr(from),
      slots.map((s) => ['CLUSTER', 'SETSLOT', s, 'NODE', toId]),
      false,
    );
  }

  /** Commands in one pipeline; the first error that is not "already done" is thrown. */
  private async batch(
    ref: { host: string; port: number },
    commands: (string | number)[][],
    tolerateAlready: boolean,
  ): Promise<unknown[]> {
    if (commands.length === 0) return [];
    const c = this.client(ref);
    if (c.status === 'wait' || c.status === 'end' || c.status === 'close') await c.connect();
    const p = c.pipeline();
    for (const [cmd, ...args] of commands) p.call(String(cmd), ...args.map(String));
    const results = (await p.exec()) ?? [];
    return results.map(([err, value]) => {
      if (err && !(tolerateAlready && ALREADY.some((re) => re.test(err.message)))) throw err;
      return value;
    });
  }

  private async migrateKeys(from: RedisPodView, to: RedisPodView, slot: number): Promise<void> {
    const ip = to.ip ?? to.ref.host;
    for (;;) {
      const keys = (await this.call(addr(from), 'CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) return;
      // The source node logs in to the target as the same user (AUTH2 names it).
      const auth =
        this.opts.password === undefined
          ? []
          : this.opts.username !== undefined
            ? ['AUTH2', this.opts.username, this.opts.password]
            : ['AUTH', this.opts.password];
      await this.call(
        addr(from),
        'MIGRATE',
        ip,
        to.ref.port,
        '',
        0,
        this.opts.migrateTimeoutMs ?? 5000,
        'REPLACE',
        ...auth,
        'KEYS',
        ...keys,
      );
    }
  }

  /** True when the last observe() asked some node and every one refused the login. */
  everyLoginRefused(): boolean {
    return this.asked > 0 && this.refused === this.asked;
  }

  close(): void {
    for (const c of this.clients.values()) c.disconnect();
    this.clients.clear();
  }
}
