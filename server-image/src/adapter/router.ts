import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { HashRing } from './ring.js';

export interface ShardAddress {
  host: string;
  port: number;
}

/** Observers of the router, so it stays free of any metrics library. */
export interface RouterHooks {
  onPublish?(shard: number): void;
  onPublishLost?(shard: number, reason: string): void;
  onError?(shard: number, err: Error): void;
  onShardState?(shard: number, up: boolean): void;
}

export interface ShardRouterOptions {
  shards: ShardAddress[];
  password?: string | undefined;
  /** The adapter's channel prefix (`socket.io` unless changed); channels are `<prefix>#<nsp>#<room>#`. */
  channelPrefix?: string;
  /** Shard of the server-wide channel used by fetchSockets, serverSideEmit and serverCount(). */
  homeShard?: number;
  hooks?: RouterHooks;
}

type PubSubCallback = (err: Error | null, result?: unknown) => void;

interface Shard {
  index: number;
  address: ShardAddress;
  pub: Redis;
  sub: Redis;
  up: boolean;
}

const MAX_CACHED_CHANNELS = 100_000;

/**
 * The ring key of an adapter channel `<prefix>#<nsp>#<suffix>#`: the room (or a server's uid for
 * its response channel), or undefined for the namespace-wide channel, which lives on the home
 * shard. `prefix` includes its trailing `#`. Foreign channels hash as a whole.
 */
export function channelRoutingKey(channel: string, prefix: string): string | undefined {
  if (!channel.startsWith(prefix)) return channel;
  const nspEnd = channel.indexOf('#', prefix.length);
  const rest = nspEnd === -1 ? '' : channel.slice(nspEnd + 1);
  if (rest === '') return undefined;
  return rest.endsWith('#') ? rest.slice(0, -1) : rest;
}

/**
 * Looks like one ioredis client to @socket.io/redis-adapter's sharded adapter (it calls
 * ssubscribe, sunsubscribe, spublish, send_command and listens to `smessageBuffer`) but sends
 * each channel to the shard that owns its room on a consistent-hash ring. Each shard has its own
 * publisher and subscriber connection; ioredis reconnects and re-subscribes after a shard restart.
 * Publishing never waits for a dead shard: the publish fails at once and is counted as lost.
 */
export class ShardRouter extends EventEmitter {
  readonly ring: HashRing;
  readonly homeShard: number;
  private readonly shards: Shard[];
  private readonly prefix: string;
  private readonly channelShard = new Map<string, number>();
  private readonly subscriptions = new Map<string, Promise<boolean>>();
  private readonly hooks: RouterHooks;
  private closed = false;

  constructor(options: ShardRouterOptions) {
    super();
    if (options.shards.length === 0) throw new Error('at least one Redis shard is required.');
    this.ring = new HashRing(options.shards.length);
    this.homeShard = options.homeShard ?? 0;
    this.prefix = `${options.channelPrefix ?? 'socket.io'}#`;
    const hooks = options.hooks ?? {};
    this.shards = options.shards.map((address, index) => {
      const common = {
        host: address.host,
        port: address.port,
        password: options.password,
        // Capped backoff: a restarted shard is back within seconds, and retries must not stop.
        retryStrategy: (times: number): number => Math.min(100 * times, 2000),
      };
      // Fail fast instead of queueing: a publish held in a queue during an outage would arrive
      // late and out of order, and nobody would know it was in danger.
      const pub = new Redis({
        ...common,
        connectionName: `socketfleet-pub-${index}`,
        // Publishes issued in one tick (a burst of broadcasts, handshake replies) share one
        // write: fewer syscalls on both ends, same order.
        enableAutoPipelining: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
      });
      // Subscriptions issued during an outage must survive until the shard is back.
      const sub = new Redis({
        ...common,
        connectionName: `socketfleet-sub-${index}`,
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        autoResubscribe: true,
      });
      const shard: Shard = { index, address, pub, sub, up: false };
      const refresh = (): void => {
        const up = pub.status === 'ready' && sub.status === 'ready';
        if (up !== shard.up) {
          shard.up = up;
          hooks.onShardState?.(index, up);
          this.emit(up ? 'shard-up' : 'shard-down', index);
        }
      };
      // Before 'shard-up' is announced, every channel of this shard is subscribed again
      // explicitly (ioredis re-subscribes on its own, but does not say when it is done), so
      // whenSubscribed() after a restart means subscribed on the restarted Redis.
      sub.on('ready', () => this.reconfirm(index));
      for (const client of [pub, sub]) {
        client.on('ready', refresh);
        client.on('close', refresh);
        client.on('end', refresh);
        client.on('reconnecting', refresh);
        client.on('error', (err: Error) => {
          hooks.onError?.(index, err);
          this.emit('shard-error', index, err);
        });
      }
      sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => {
        // Between SUNSUBSCRIBE being sent and Redis processing it, messages still arrive for a
        // channel the adapter has already forgotten; they are handed out separately so the
        // membership handshake can still answer them.
        if (this.subscriptions.has(channel.toString()))
          this.emit('smessageBuffer', channel, message);
        else this.emit('orphanMessage', channel, message);
      });
      return shard;
    });
    this.hooks = hooks;
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** The shard of a room in namespace `nsp`, as used for its dynamic channel. */
  shardForRoom(room: string): number {
    return this.ring.shardFor(room);
  }

  /**
   * Room channels go to the room's shard; the namespace-wide channel goes to the home shard;
   * any other suffix (a server's response channel) is hashed like a room, which publisher and
   * subscriber compute identically.
   */
  shardForChannel(channel: string): number {
    const cached = this.channelShard.get(channel);
    if (cached !== undefined) return cached;
    const key = channelRoutingKey(channel, this.prefix);
    const shard = key === undefined ? this.homeShard : this.ring.shardFor(key);
    if (this.channelShard.size >= MAX_CACHED_CHANNELS) this.channelShard.clear();
    this.channelShard.set(channel, shard);
    return shard;
  }

  isShardUp(shard: number): boolean {
    return this.shards[shard]?.up ?? false;
  }

  allShardsUp(): boolean {
    return this.shards.every((s) => s.up);
  }

  shardAddress(shard: number): ShardAddress | undefined {
    return this.shards[shard]?.address;
  }

  private shardOf(channel: string): Shard {
    return this.shards[this.shardForChannel(channel)]!;
  }

  /** Never rejects: the adapter fires this and forgets, so failures are reported via hooks. */
  ssubscribe(...channels: (string | string[])[]): Promise<void> {
    return this.forEachShardGroup(channels.flat(), (shard, group) => {
      const done = shard.sub.ssubscribe(...group);
      const confirmed = done.then(
        () => true,
        () => false,
      );
      for (const channel of group) this.subscriptions.set(channel, confirmed);
      return done;
    });
  }

  private reconfirm(index: number): void {
    const shard = this.shards[index];
    if (!shard || this.closed) return;
    const channels = [...this.subscriptions.keys()].filter((c) => this.shardOf(c) === shard);
    if (channels.length === 0) return;
    const confirmed = shard.sub.ssubscribe(...channels).then(
      () => true,
      (err: unknown) => {
        this.hooks.onError?.(index, err instanceof Error ? err : new Error(String(err)));
        return false;
      },
    );
    for (const channel of channels) this.subscriptions.set(channel, confirmed);
  }

  /**
   * Resolves true once the latest SSUBSCRIBE of `channel` is confirmed by its shard, false if it
   * failed, was never issued, or took longer than `timeoutMs` (the shard may be restarting).
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
    return this.forEachShardGroup(channels.flat(), (shard, group) => {
      for (const channel of group) this.subscriptions.delete(channel);
      return shard.sub.sunsubscribe(...group);
    });
  }

  private async forEachShardGroup(
    channels: string[],
    run: (shard: Shard, group: string[]) => Promise<unknown>,
  ): Promise<void> {
    if (this.closed) return;
    const groups = new Map<Shard, string[]>();
    for (const channel of channels) {
      const shard = this.shardOf(channel);
      const group = groups.get(shard);
      if (group) group.push(channel);
      else groups.set(shard, [channel]);
    }
    await Promise.all(
      [...groups].map(([shard, group]) =>
        run(shard, group).catch((err: unknown) => {
          this.hooks.onError?.(shard.index, err instanceof Error ? err : new Error(String(err)));
        }),
      ),
    );
  }

  /** Resolves with the number of subscribers reached; rejects (and counts a lost publish) when the shard is down. */
  async spublish(channel: string, payload: string | Buffer): Promise<number> {
    const shard = this.shardOf(channel);
    if (!shard.up || shard.pub.status !== 'ready') {
      const reason = `redis shard ${shard.index} (${shard.address.host}:${shard.address.port}) is unavailable`;
      this.hooks.onPublishLost?.(shard.index, reason);
      throw new Error(reason);
    }
    this.hooks.onPublish?.(shard.index);
    try {
      return Number(await shard.pub.spublish(channel, payload));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.hooks.onPublishLost?.(shard.index, reason);
      throw err;
    }
  }

  /** The adapter's serverCount() sends `PUBSUB SHARDNUMSUB <channel>` through here. */
  send_command(name: string, args: string[], callback: PubSubCallback): void {
    const channel = args[args.length - 1] ?? '';
    const shard = this.shardOf(channel);
    shard.pub.call(name, ...args).then(
      (result) => callback(null, result),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** Number of servers subscribed to a channel, asked on the shard that owns it. */
  async shardNumSub(channel: string): Promise<number> {
    const result = (await this.shardOf(channel).pub.call('PUBSUB', 'SHARDNUMSUB', channel)) as [
      string,
      number,
    ];
    return Number(result[1]);
  }

  /** Resolves once every shard is connected, or rejects after `timeoutMs`. */
  waitUntilAllUp(timeoutMs: number): Promise<void> {
    if (this.allShardsUp()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!this.allShardsUp()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        const down = this.shards
          .filter((s) => !s.up)
          .map((s) => `${s.address.host}:${s.address.port}`);
        reject(new Error(`redis shards not reachable after ${timeoutMs} ms: ${down.join(', ')}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('shard-up', check);
      };
      this.on('shard-up', check);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // QUIT would wait forever in the subscriber's offline queue while a shard is down.
    await Promise.all(
      this.shards
        .flatMap((s) => [s.pub, s.sub])
        .map(async (client) => {
          if (client.status !== 'ready') return client.disconnect();
          await client.quit().catch(() => client.disconnect());
        }),
    );
  }
}
