import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerConfigSchema } from '../../server-image/src/config.js';
import { createServer, relayHandlers, type ServerHandle } from '../../server-image/src/index.js';
import { closeAllClients, connect } from './support/clients.js';
import { Fleet, freePort, until, type RedisShard } from './support/fleet.js';

// Socket.IO keeps each session's first HTTP request (headers, socket references) for the life of
// the connection; the server frees it once middleware and onConnection have run, unless asked not to.
describe('the handshake HTTP request', () => {
  const fleet = new Fleet('http-request');
  let shard: RedisShard;
  const handles: ServerHandle[] = [];

  async function library(
    keepHttpRequest?: boolean,
  ): Promise<{ server: ServerHandle; hostSeenInOnConnection: () => unknown }> {
    const config = ServerConfigSchema.parse({
      port: await freePort(),
      opsPort: await freePort(),
      logLevel: 'warn',
      redis: { shards: [{ host: '127.0.0.1', port: shard.port }] },
      ...(keepHttpRequest === undefined ? {} : { keepHttpRequest }),
    });
    let seenInOnConnection: unknown;
    const handle = await createServer(
      config,
      {
        ...relayHandlers,
        onConnection: (socket) => {
          seenInOnConnection = socket.request.headers.host;
        },
      },
      { redisPassword: shard.password },
    );
    handles.push(handle);
    await until('library server ready', () => handle.isReady());
    return { server: handle, hostSeenInOnConnection: () => seenInOnConnection };
  }

  beforeAll(async () => {
    shard = await fleet.redis();
  });

  afterAll(async () => {
    closeAllClients();
    await Promise.all(handles.map((h) => h.close()));
    await fleet.stopAll();
  });

  for (const keep of [undefined, true]) {
    it(
      keep ? 'is kept with keepHttpRequest: true' : 'is released after onConnection by default',
      async () => {
        const { server, hostSeenInOnConnection } = await library(keep);
        const client = await connect(`http://127.0.0.1:${server.port}`);
        const socket = server.io.of('/').sockets.get(client.id!)!;
        // onConnection saw it either way, and the handshake keeps what the request told.
        expect(hostSeenInOnConnection()).toBeTypeOf('string');
        expect(socket.handshake.headers.host).toBeTypeOf('string');
        expect(socket.handshake.address).toContain('127.0.0.1');
        if (keep) expect(socket.request.headers.host).toBeTypeOf('string');
        else expect(socket.request).toBeNull();
        // The connection still works: a join is acknowledged.
        expect(await client.emitWithAck('join', 'r')).toMatchObject({ ok: true });
      },
    );
  }
});
