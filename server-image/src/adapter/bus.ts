import { EventEmitter } from 'node:events';
import type { ConnectionOptions } from 'node:tls';
import calculateSlot from 'cluster-key-slot';
import { Cluster, type ClusterOptions } from 'ioredis';

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** Why a publish never reached Redis; the label of socketfleet_bus_publish_failed_total. */
export type PublishFailure = 'redis-error' | 'hold-queue-full';

/** Observers of the bus, so it stays free of any metrics or logging library. */
export interface BusHooks {
  onPublish?(): void;
  onPublishFailed?(reason: PublishFailure, err: Error): void;
  /** Publishes sent and not answered yet changed to `held`. */
  onHeld?(held: number): void;
  /** `node` is the node key (host:port) when the error belongs to one node's connection. */
  onError?(err: Error, node: string | undefined): void;
  onReady?(ready: boolean): void;
}

/**
 * How long a publish to a slot without a reachable master is held before it is counted as lost,
 * and how many may wait at once. With cluster-node-timeout 2000 a replica takes over 3.4–4.2 s
 * after its master dies (REDIS-CLUSTER.md; re-measured by test/dataplane/cluster-failover.test.ts),
 * and Kubernetes' default of 5000 about doubles that, so 12 s covers both with room to spare.
 */
export interface BusTimings {
  holdMs: number;
  /** Delay between two tries of a held command (every ioredis retry kind uses it). */
  retryDelayMs: number;
  /**
   * Slot map refresh while the topology is changing (within holdMs of any sign of it): it also
   * catches a slot move that told no connection of this client, e.g. a re-subscription ioredis
   * made at a slot's previous owner.
   */
  slotsRefreshIntervalMs: number;
  /**
   * Slot map refresh otherwise. Each refresh opens a connection for CLUSTER SLOTS and compares
   * 16,384-slot maps: at 1 s on 50 mostly idle servers that was a quarter of their CPU (bench
   * --at-scale). Any use of a moved slot answers MOVED, and Redis tells every subscriber of a
   * moved channel, so a quiet topology needs only this slow sweep.
   */
  slotsRefreshIdleMs: number;
  maxHeld: number;
}

/**
 * Answers that mean "ask again later or elsewhere", which a held publish outlasts; the last is
 * ioredis refusing an auto-pipelined batch whose slots changed owner before it was sent.
 */
const REDIRECTION =
  /^(MOVED |ASK |TRYAGAIN |CLUSTERDOWN |All keys in the pipeline should belong to the same)/;

/** Quiet time after a slot change before every channel is subscribed again. */
const RESUBSCRIBE_AFTER_MS = 1500;

/** How much longer than the hold ioredis's own retries may take before the bus gives up. */
const HOLD_MARGIN_MS = 1000;

/** serverCount() must not wait for a dead master: its caller (fetchSockets...) has its own timeout. */
const SHARDNUMSUB_TIMEOUT_MS = 2000;

export const DEFAULT_BUS_TIMINGS: BusTimings = {
  holdMs: 12_000,
  retryDelayMs: 100,
  slotsRefreshIntervalMs: 1000,
  slotsRefreshIdleMs: 10_000,
  maxHeld: 20_000,
};

export interface ClusterBusOptions {
  nodes: RedisNodeAddress[];
  password?: string | undefined;
  /** ACL user; the default user when unset. */
  username?: string | undefined;
  /** TLS for every node connection, plain TCP when unset. */
  tls?: ConnectionOptions | undefined;
  timings?: Partial<BusTimings>;
  hooks?: BusHooks;
}

/**
 * One ioredis Cluster client with sharded subscribers, shaped like the client
 * @socket.io/redis-adapter's sharded adapter expects (ssubscribe, sunsubscribe, spublish and the
 * `smessageBuffer` event), plus what the adapter's fast paths need: whether a channel's
 * subscription is confirmed, which node owns a channel's slot, and the topology events that tell
 * when a subscription may have been lost.
 *
 * Publishes are held through a failover: ioredis retries a command whose node is gone (and the
 * MOVED/CLUSTERDOWN/TRYAGAIN answers around it) every retryDelayMs, up to holdMs in all, while
 * the slot's replica is promoted. After that, or when maxHeld publishes already wait, the
 * publish fails and is counted; nothing else waits for it (local delivery comes first).
 */
export class ClusterBus extends EventEmitter {
  readonly cluster: Cluster;
  readonly timings: BusTimings;
  private readonly hooks: BusHooks;
  private readonly subscriptions = new Map<string, Promise<boolean>>();
  private held = 0;
  private lastTopologyChange = 0;
  private readonly pending = new Set<{ started: number; expire: (err: Error) => void }>();
  private readonly sweeper: NodeJS.Timeout;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** When the scheduled slot map refresh runs. */
  private refreshAt = 0;
  private slotsSignature = '';
  /** Nodes whose connection failed and has not been ready since. */
  private readonly downNodes = new Set<string>();
  private everReady = false;
  private closed = false;

  constructor(options: ClusterBusOptions) {
    super();
    if (options.nodes.length === 0) throw new Error('at least one Redis Cluster node is required.');
    this.timings = { ...DEFAULT_BUS_TIMINGS, ...options.timings };
    this.hooks = options.hooks ?? {};
    const t = this.timings;
    const clusterOptions: ClusterOptions = {
      shardedSubscribers: true,
      // Refreshed by this class at a pace that follows the topology (scheduleRefresh).
      slotsRefreshInterval: 0,
      slotsRefreshTimeout: 1000,
      retryDelayOnFailover: t.retryDelayMs,
      retryDelayOnClusterDown: t.retryDelayMs,
      retryDelayOnTryAgain: t.retryDelayMs,
      // A failed master answers nothing, so the next try goes to a random node, which answers
      // MOVED back to the dead master: without a delay that loop would spend the budget in
      // milliseconds instead of outlasting the promotion.
      retryDelayOnMoved: t.retryDelayMs,
      maxRedirections: Math.ceil(t.holdMs / t.retryDelayMs),
      // Commands issued before the first slot map (a server starting) wait for it.
      enableOfflineQueue: true,
      // The whole cluster unreachable is retried for ever, capped at 2 s between tries.
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      // Keep the host names the nodes announce (cluster-announce-hostname): the operator's
      // nodes are StatefulSet pods whose IPs change, and TLS checks the name.
      dnsLookup: (address, callback) => callback(null, address),
      // Publishes issued in one tick share one write per node.
      enableAutoPipelining: true,
      // ioredis auto-pipelines SSUBSCRIBE/SUNSUBSCRIBE too (its exclusion list names only the
      // unsharded ones): such a batch goes over a node's command connection, which Redis then
      // counts as a subscriber while ioredis emits nothing it receives, so a room's members on
      // that server silently missed every broadcast (about a quarter of rooms in rollout.test.ts).
      // Sent alone they go through the sharded subscriber of the slot's master.
      autoPipeliningIgnoredCommands: ['ssubscribe', 'sunsubscribe'],
      redisOptions: {
        password: options.password,
        ...(options.username !== undefined ? { username: options.username } : {}),
        ...(options.tls !== undefined ? { tls: options.tls } : {}),
        connectionName: 'socketfleet',
        // A pod that is gone drops packets; fail the try quickly and let the retry find the new master.
        connectTimeout: 2000,
        maxRetriesPerRequest: null,
      },
    };
    this.cluster = new Cluster(
      options.nodes.map((n) => ({ host: n.host, port: n.port })),
      clusterOptions,
    );
    this.sweeper = setInterval(() => this.expireHeld(), 500);
    this.sweeper.unref();
    this.cluster.on('error', (err: Error) => this.hooks.onError?.(err, undefined));
    const nodeError = (err: Error, node: string): void => {
      this.downNodes.add(node);
      this.topologyChanged();
      this.hooks.onError?.(err, node);
    };
    this.cluster.on('node error', nodeError);
    this.cluster.on('nodeError', nodeError);
    this.cluster.on('+node', (redis: EventEmitter & { options: RedisNodeAddress }) => {
      const key = `${redis.options.host}:${redis.options.port}`;
      redis.on('ready', () => this.downNodes.delete(key));
    });
    // A MOVED answer, or Redis unsubscribing a moved shard channel (ioredis refreshes then).
    this.cluster.on('moved', () => this.topologyChanged());
    this.cluster.on('ready', () => {
      if (!this.everReady) this.scheduleRefresh();
      this.everReady = true;
      this.hooks.onReady?.(true);
    });
    this.cluster.on('close', () => this.hooks.onReady?.(false));
    // A sharded subscriber (or any connection) ended: its node's channels may have lost their
    // subscription until ioredis re-subscribes them at the slot's current owner.
    this.cluster.on('-node', (redis: { options: RedisNodeAddress }, key?: string) => {
      const node = key ?? `${redis.options.host}:${redis.options.port}`;
      this.downNodes.add(node);
      this.topologyChanged();
      this.emit('node-lost', node);
    });
    // ioredis re-subscribed every channel after a topology change (failover, slot move).
    this.cluster.on('subscribersReady', () => {
      this.topologyChanged();
      this.scheduleResubscribe();
      this.emit('topology');
    });
    this.cluster.on('refresh', () => {
      if (this.slotsChanged()) {
        this.topologyChanged();
        this.scheduleResubscribe();
      }
      this.emit('topology');
    });
    this.cluster.on('smessageBuffer', (channel: Buffer, message: Buffer) => {
      // Between SUNSUBSCRIBE being sent and Redis processing it, messages still arrive for a
      // channel the adapter has already forgotten; they are handed out separately so the
      // membership handshake can still answer them.
      if (this.subscriptions.has(channel.toString())) this.emit('smessageBuffer', channel, message);
      else this.emit('orphanMessage', channel, message);
    });
  }

  /**
   * A while after the slots last changed, every channel is subscribed again (SSUBSCRIBE is
   * idempotent) at the owner the client now knows. ioredis re-subscribes by itself, but can do
   * so at a slot's previous owner when its slot map lags the move; then a channel the adapter
   * never re-joins (the namespace channel of inter-server requests, a server's response
   * channel) would stay silent: seen as requests with no answer after a 2 -> 3 -> 2 reshard.
   */
  private scheduleResubscribe(): void {
    clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = setTimeout(() => {
      if (this.closed) return;
      for (const channel of [...this.subscriptions.keys()]) void this.subscribeOne(channel);
    }, RESUBSCRIBE_AFTER_MS);
    this.resubscribeTimer.unref();
  }

  /** Whether the slot map differs from the last one seen (about 1 ms for 16384 slots). */
  private slotsChanged(): boolean {
    const owners: string[] = [];
    let previous: string | undefined;
    for (const nodes of this.cluster.slots) {
      const owner = nodes?.[0];
      if (owner !== previous) owners.push(owner ?? '-');
      previous = owner;
    }
    const signature = owners.join(',');
    const changed = signature !== this.slotsSignature;
    this.slotsSignature = signature;
    return changed;
  }

  /** Marks a sign of a topology change: the slot map is refreshed every second for the hold time. */
  private topologyChanged(): void {
    this.lastTopologyChange = Date.now();
    if (this.everReady && this.refreshAt > Date.now() + this.timings.slotsRefreshIntervalMs)
      this.scheduleRefresh();
  }

  private scheduleRefresh(): void {
    if (this.closed) return;
    clearTimeout(this.refreshTimer);
    const delay = this.topologyChanging()
      ? this.timings.slotsRefreshIntervalMs
      : this.timings.slotsRefreshIdleMs;
    this.refreshAt = Date.now() + delay;
    this.refreshTimer = setTimeout(() => {
      this.cluster.refreshSlotsCache(() => this.scheduleRefresh());
    }, delay);
    this.refreshTimer.unref();
  }

  /**
   * True while masters or slots changed within the hold time: a publish that reached fewer
   * member servers than expected may reach them once they have subscribed at the new owner.
   */
  topologyChanging(now = Date.now()): boolean {
    return now - this.lastTopologyChange < this.timings.holdMs;
  }

  /** True once the client has had a slot map: from then on the server can serve clients. */
  get hasBeenReady(): boolean {
    return this.everReady;
  }

  get heldPublishes(): number {
    return this.held;
  }

  static slotOf(channel: string): number {
    return calculateSlot(channel);
  }

  /** The node key (host:port) of the master that owns `channel`'s slot in this client's map. */
  ownerOf(channel: string): string | undefined {
    return this.cluster.slots[calculateSlot(channel)]?.[0];
  }

  /**
   * Whether the master of `channel`'s slot is believed reachable: it has an owner in the slot
   * map, and its last connection did not fail (or was ready again since).
   */
  ownerReachable(channel: string): boolean {
    const owner = this.ownerOf(channel);
    return owner !== undefined && !this.downNodes.has(owner);
  }

  /** The adapter fires this and forgets; the outcome is kept for whenSubscribed(). */
  ssubscribe(...channels: (string | string[])[]): Promise<void> {
    return Promise.all(channels.flat().map((c) => this.subscribeOne(c))).then(() => undefined);
  }

  private subscribeOne(channel: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const confirmed = this.cluster.ssubscribe(channel).then(
      () => true,
      (err: unknown) => {
        this.hooks.onError?.(err instanceof Error ? err : new Error(String(err)), undefined);
        return false;
      },
    );
    this.subscriptions.set(channel, confirmed);
    return confirmed;
  }

  /**
   * Subscribes `channel` again (SSUBSCRIBE is idempotent) so that whenSubscribed() means
   * confirmed by the slot's current owner; used after a failover or a slot move.
   */
  resubscribe(channel: string): void {
    if (this.subscriptions.has(channel)) void this.subscribeOne(channel);
  }

  /**
   * Resolves true once the latest SSUBSCRIBE of `channel` is confirmed, false if it failed, was
   * never issued, or took longer than `timeoutMs` (its master may be failing over).
   */
  whenSubscribed(channel: string, timeoutMs: number): Promise<boolean> {
    const confirmed = this.subscriptions.get(channel);
    if (!confirmed) return Promise.resolve(false);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return Promise.race([confirmed, timeout]).finally(() => clearTimeout(timer));
  }

  sunsubscribe(...channels: (string | string[])[]): Promise<void> {
    const all = channels.flat();
    for (const channel of all) this.subscriptions.delete(channel);
    if (this.closed) return Promise.resolve();
    return Promise.all(
      all.map((c) =>
        this.cluster.sunsubscribe(c).catch((err: unknown) => {
          this.hooks.onError?.(err instanceof Error ? err : new Error(String(err)), undefined);
        }),
      ),
    ).then(() => undefined);
  }

  /** Resolves with the number of subscribers reached; rejects (counted) once the hold is over. */
  spublish(channel: string, payload: string | Buffer): Promise<number> {
    return this.hold(channel, () => this.cluster.spublish(channel, payload)).then(Number);
  }

  /**
   * Runs a publishing command for `channel`'s slot (a plain SPUBLISH, or a script that also
   * appends to a log in that slot) with the publish's hold: redirections and failovers are
   * outlasted for holdMs, the hold queue is bounded, failures are counted.
   */
  hold<T>(channel: string, send: () => Promise<T>): Promise<T> {
    if (this.held >= this.timings.maxHeld) {
      const err = new Error(
        `${this.held} publishes already wait for Redis; this one was dropped (hold queue full).`,
      );
      this.hooks.onPublishFailed?.('hold-queue-full', err);
      return Promise.reject(err);
    }
    this.hooks.onPublish?.();
    this.setHeld(this.held + 1);
    return this.withDeadline(this.publishHeld(send, Date.now())).then(
      (n) => {
        this.setHeld(this.held - 1);
        // The slot's master answered, whatever an earlier error said about it.
        const owner = this.ownerOf(channel);
        if (owner !== undefined) this.downNodes.delete(owner);
        return n;
      },
      (err: unknown) => {
        this.setHeld(this.held - 1);
        const error = err instanceof Error ? err : new Error(String(err));
        this.hooks.onPublishFailed?.('redis-error', error);
        throw error;
      },
    );
  }

  /**
   * ioredis does not bound every wait: a command for a slot whose master is gone with no
   * replica to promote waited far past maxRedirections × retry delay (cluster-failover.test.ts,
   * second case). Past the hold plus a margin the publish is given up and counted; should
   * ioredis still send it later, it arrives late rather than never, so the count errs high.
   */
  private withDeadline<T>(publish: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { started: Date.now(), expire: reject };
      this.pending.add(entry);
      publish.then(
        (n) => {
          this.pending.delete(entry);
          resolve(n);
        },
        (err: unknown) => {
          this.pending.delete(entry);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** One timer for every held publish instead of one per publish (thousands a second). */
  private expireHeld(): void {
    const now = Date.now();
    const limit = this.timings.holdMs + HOLD_MARGIN_MS;
    for (const entry of this.pending) {
      if (now - entry.started <= limit) continue;
      this.pending.delete(entry);
      entry.expire(
        new Error(
          `no master answered within the ${this.timings.holdMs} ms hold; the publish is given up.`,
        ),
      );
    }
  }

  /**
   * A command that is not a publish, sent again on the answers a held publish is (below), for up
   * to the hold time: a restore's read batched with a write that succeeded got MOVED after a
   * reshard, in about one run in three (recovery.test.ts; recovery-store-moved.test.ts shows
   * it). Each such answer means Redis did not run the command; a writer whose late retry could
   * land after a newer write of the same key must check that in `send`.
   */
  retrying<T>(send: () => Promise<T>): Promise<T> {
    return this.publishHeld(send, Date.now());
  }

  /**
   * ioredis follows MOVED and ASK for a single command, but not for a command that shared an
   * auto-pipelined batch with others that succeeded: that one is rejected with the redirection
   * itself, and it refuses a batch whose slots moved between queueing and sending (both seen
   * on slot moves under traffic, test/dataplane/cluster-reshard.test.ts).
   * Such a publish is sent again, after a slot refresh, until the hold time is over.
   */
  private async publishHeld<T>(send: () => Promise<T>, since: number): Promise<T> {
    for (;;) {
      try {
        return await send();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!REDIRECTION.test(message) || Date.now() - since > this.timings.holdMs) throw err;
        this.topologyChanged();
        this.cluster.refreshSlotsCache();
        await new Promise((resolve) => setTimeout(resolve, this.timings.retryDelayMs));
      }
    }
  }

  private setHeld(n: number): void {
    this.held = n;
    this.hooks.onHeld?.(n);
  }

  /** Subscribers of `channel` on the master that owns its slot (PUBSUB SHARDNUMSUB). */
  async shardNumSub(channel: string): Promise<number> {
    const owner = this.ownerOf(channel);
    const node = this.cluster
      .nodes('master')
      .find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!node) throw new Error(`no reachable master owns the slot of ${channel}.`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the master of the slot of ${channel} did not answer in time.`)),
        SHARDNUMSUB_TIMEOUT_MS,
      );
    });
    try {
      const asked = node.call('PUBSUB', 'SHARDNUMSUB', channel);
      asked.catch(() => undefined);
      const result = (await Promise.race([asked, timeout])) as [string, number];
      return Number(result[1]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once the client has a slot map, or rejects after `timeoutMs`. */
  waitUntilReady(timeoutMs: number): Promise<void> {
    if (this.everReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.cluster.off('ready', onReady);
        reject(new Error(`the Redis Cluster was not reachable within ${timeoutMs} ms.`));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.cluster.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    clearTimeout(this.resubscribeTimer);
    clearTimeout(this.refreshTimer);
    // QUIT would wait in the offline queue while the cluster is unreachable.
    if (this.cluster.status !== 'ready') {
      this.cluster.disconnect();
      return;
    }
    await this.cluster.quit().catch(() => this.cluster.disconnect());
  }
}
