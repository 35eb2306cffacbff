import { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { relayApp } from '../../server-image/src/index.js';
import { connect } from './support/clients.js';
import { until } from './support/fleet.js';
import { useLibraryServers, type LibraryServer } from './support/library-servers.js';

// Socket.IO keeps each session's first HTTP request (headers, socket references) for the life of
// the connection; the server frees it once middleware and onConnection have run, unless asked not to.
describe('the handshake HTTP request', () => {
  const servers = useLibraryServers('http-request');

  async function library(
    keepHttpRequest?: boolean,
  ): Promise<{ server: LibraryServer; hostSeenInOnConnection: () => unknown }> {
    let seenInOnConnection: unknown;
    const server = await servers.start(
      keepHttpRequest === undefined ? {} : { keepHttpRequest },
      (io, ops) => {
        relayApp(io, ops);
        io.of('/second');
        io.on('connection', (socket) => {
          seenInOnConnection = socket.request.headers.host;
        });
      },
    );
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
        else expect(socket.request).not.toBeInstanceOf(IncomingMessage);
        // The connection still works: a join is acknowledged.
        expect(await client.emitWithAck('join', 'r')).toMatchObject({ ok: true });
        // A second namespace on the same connection, joined after the request was released,
        // still sees the handshake's headers and query.
        const second = client.io.socket('/second');
        await new Promise<void>((resolve, reject) => {
          second.once('connect', () => resolve());
          second.once('connect_error', reject);
          second.connect();
        });
        const other = server.io.of('/second').sockets.get(second.id!)!;
        expect(other.handshake.headers.host).toBeTypeOf('string');
        expect(other.handshake.url).toContain('EIO=4');
        second.disconnect();
      },
    );
  }

  // engine.io's stand-in response of each WebSocket upgrade lives as long as the connection (a
  // listener on its TCP socket holds it) and would keep that upgrade's request alive with it.
  for (const transports of [['websocket'], ['polling', 'websocket']] as const) {
    it(`is not held by the upgrade's stand-in response (${transports.join(' then ')})`, async () => {
      const responses: { req?: unknown }[] = [];
      const server = await servers.start({ keepHttpRequest: false }, (io, ops) => {
        relayApp(io, ops);
        io.engine.use((req: IncomingMessage, res: object, next: () => void) => {
          // Only upgrades get a response that is not an http.ServerResponse.
          if (!('statusCode' in res)) {
            // An app's middleware may still set a header while the handshake runs.
            (res as { setHeader(name: string, value: string): void }).setHeader('x-app', 'yes');
            responses.push(res);
          }
          next();
        });
      });
      const client = await connect(`http://127.0.0.1:${server.port}`, {
        transports: [...transports],
      });
      await until('upgraded', () => client.io.engine.transport.name === 'websocket');
      expect(await client.emitWithAck('join', 'r')).toMatchObject({ ok: true });
      expect(responses).toHaveLength(1);
      expect(responses[0]!.req).toBeUndefined();
      client.disconnect();
    });
  }
});
