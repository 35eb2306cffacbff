import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { Server } from 'socket.io';
import type { ClusterBus } from './adapter/bus.js';
import type { NewSessionClock } from './drain.js';
import type { ServerMetrics } from './metrics.js';
import { createRebalancer } from './rebalance.js';

export interface OpsState {
  io: Server;
  bus: ClusterBus;
  metrics: ServerMetrics;
  newSessions: NewSessionClock;
  draining(): boolean;
  closed(): boolean;
}

/** Rooms with a local member in every namespace, private socket rooms left out. */
export function countRooms(io: Server): { rooms: number; namespaces: number } {
  let rooms = 0;
  let namespaces = 0;
  for (const nsp of (
    io as unknown as { _nsps: Map<string, { adapter: RoomMaps }> }
  )._nsps.values()) {
    namespaces++;
    const adapter = nsp.adapter;
    for (const room of adapter.rooms.keys()) if (!adapter.sids.has(room)) rooms++;
  }
  return { rooms, namespaces };
}

interface RoomMaps {
  rooms: Map<string, unknown>;
  sids: Map<string, unknown>;
}

/**
 * The ops listener: /healthz, /readyz, /prestop, /metrics and /rebalance (rebalance.ts). Readiness belongs to the process:
 * once the client has had a slot map, a failing Redis node only delays (or, past the hold, loses)
 * the traffic of the rooms whose slots it owns, so it must not take this server's clients away.
 */
export function createOpsServer(state: OpsState): HttpServer {
  const { io, bus, metrics } = state;
  const rebalancer = createRebalancer(io);
  return createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const reason = state.draining()
        ? 'draining'
        : state.closed()
          ? 'closed'
          : !bus.hasBeenReady
            ? 'waiting for the first Redis Cluster slot map'
            : 'ready';
      res
        .writeHead(reason === 'ready' ? 200 : 503, { 'content-type': 'text/plain' })
        .end(`${reason}\n`);
    } else if (url === '/prestop' || url.startsWith('/prestop?')) {
      state.newSessions.handle(req, res);
    } else if (url === '/rebalance') {
      rebalancer.handle(req, res);
    } else if (url === '/metrics') {
      metrics.connectedClients.set(io.engine.clientsCount);
      metrics.busPublishesHeld.set(bus.heldPublishes);
      const { rooms, namespaces } = countRooms(io);
      metrics.rooms.set(rooms);
      metrics.namespaces.set(namespaces);
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
}
