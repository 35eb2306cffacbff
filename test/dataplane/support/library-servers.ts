import { afterAll, beforeAll } from 'vitest';
import { ServerConfigSchema, type ServerConfigInput } from '../../../server-image/src/config.js';
import {
  createServer,
  relayHandlers,
  type CreateServerOptions,
  type ServerHandlers,
  type ServerHandle,
} from '../../../server-image/src/index.js';
import { closeAllClients } from './clients.js';
import { Fleet, freePort, until, type RedisShard } from './fleet.js';

export interface LibraryServers {
  /** The Redis shard every server of the suite uses. */
  shard(): RedisShard;
  /** An in-process server (createServer) on that shard, ready; closed after the suite. */
  start(
    config?: Partial<ServerConfigInput>,
    handlers?: ServerHandlers,
    options?: Omit<CreateServerOptions, 'redisPassword'>,
  ): Promise<ServerHandle>;
}

/**
 * For suites that look inside servers (adapter state, frames, sockets) instead of only at what
 * clients receive: one real redis-server, servers in this process, all torn down after the suite.
 * Call inside describe().
 */
export function useLibraryServers(name: string): LibraryServers {
  const fleet = new Fleet(name);
  let shard: RedisShard | undefined;
  const handles: ServerHandle[] = [];

  beforeAll(async () => {
    shard = await fleet.redis();
  });

  afterAll(async () => {
    closeAllClients();
    await Promise.all(handles.map((h) => h.close()));
    await fleet.stopAll();
  });

  const current = (): RedisShard => {
    if (!shard) throw new Error('the Redis shard starts in beforeAll; use it inside tests');
    return shard;
  };
  return {
    shard: current,
    async start(config = {}, handlers = relayHandlers, options = {}) {
      const s = current();
      const parsed = ServerConfigSchema.parse({
        port: await freePort(),
        opsPort: await freePort(),
        logLevel: 'warn',
        redis: { shards: [{ host: '127.0.0.1', port: s.port }] },
        ...config,
      });
      const handle = await createServer(parsed, handlers, {
        ...options,
        redisPassword: s.password,
      });
      handles.push(handle);
      await until('library server ready', () => handle.isReady());
      return handle;
    },
  };
}
