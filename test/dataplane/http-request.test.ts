import { describe, expect, it } from 'vitest';
import { relayHandlers, type ServerHandle } from '../../server-image/src/index.js';
import { connect } from './support/clients.js';
import { useLibraryServers } from './support/library-servers.js';

// Socket.IO keeps each session's first HTTP request (headers, socket references) for the life of
// the connection; the server frees it once middleware and onConnection have run, unless asked not to.
describe('the handshake HTTP request', () => {
  const servers = useLibraryServers('http-request');

  async function library(
    keepHttpRequest?: boolean,
  ): Promise<{ server: ServerHandle; hostSeenInOnConnection: () => unknown }> {
    let seenInOnConnection: unknown;
    const server = await servers.start(keepHttpRequest === undefined ? {} : { keepHttpRequest }, {
      ...relayHandlers,
      onConnection: (socket) => {
        seenInOnConnection = socket.request.headers.host;
      },
    });
    return { server, hostSeenInOnConnection: () => seenInOnConnection };
  }

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
