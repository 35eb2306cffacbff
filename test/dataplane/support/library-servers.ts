import { afterAll, beforeAll } from 'vitest';
import { ServerConfigSchema, type ServerConfigInput } from '../../../server-image/src/config.js';
import type { Server } from 'socket.io';
import {
  createServer,
  relayApp,
  type Ops,
  type SocketfleetOptions,
} from '../../../server-image/src/index.js';
import { closeAllClients } from './clients.js';
import { Fleet, freePort, until } from './fleet.js';
import type { RedisClusterFixture } from './redis-cluster.js';

/** A library server as createServer() returns it, with the ops members at hand too. */
export type LibraryServer = Ops & { io: Server; ops: Ops };

/** What runs on the server: the relay by default, any Socket.IO app, or nothing. */
export type App = ((io: Server, ops: Ops) => void) | null;

export interface LibraryServers {
  /** The Redis Cluster every server of the suite uses. */
  redis(): RedisClusterFixture;
  /** An in-process server (createServer) on that cluster, ready; closed after the suite. */
  start(
    config?: Partial<ServerConfigInput>,
    app?: App,
    options?: Omit<SocketfleetOptions, 'redisPassword' | 'redisUsername' | 'config'>,
  ): Promise<LibraryServer>;
}

/**
 * For suites that look inside servers (adapter state, frames, sockets) instead of only at what
 * clients receive: one real Redis Cluster (3 masters), servers in this process, all torn down
 * after the suite.
 * Call inside describe().
 */
export function useLibraryServers(name: string): LibraryServers {
  const fleet = new Fleet(name);
  let cluster: RedisClusterFixture | undefined;
  const handles: LibraryServer[] = [];

  beforeAll(async () => {
    cluster = await fleet.redisCluster();
  });

  afterAll(async () => {
    closeAllClients();
    await Promise.all(handles.map((h) => h.close()));
    await fleet.stopAll();
  });

  const current = (): RedisClusterFixture => {
    if (!cluster) throw new Error('the Redis Cluster starts in beforeAll; use it inside tests');
    return cluster;
  };
  return {
    redis: current,
    async start(config = {}, app = relayApp, options = {}) {
      const s = current();
      const parsed = ServerConfigSchema.parse({
        port: await freePort(),
        opsPort: await freePort(),
        logLevel: 'warn',
        redis: { nodes: s.seeds() },
        ...config,
      });
      const { io, ops } = await createServer({
        ...options,
        config: parsed,
        ...s.serverLogin(),
      });
      app?.(io, ops);
      const handle: LibraryServer = { ...ops, io, ops };
      handles.push(handle);
      await until('library server ready', () => handle.isReady());
      return handle;
    },
  };
}
