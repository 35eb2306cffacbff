import { clientAuthMiddleware } from './client-auth.js';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import * as msgpackParser from 'socket.io-msgpack-parser';
import type { z } from 'zod';
import {
  createRoomShardedAdapter,
  type FastPaths,
  type ShardedAdapter,
} from './adapter/sharded-adapter.js';
import { ClusterBus, type BusTimings } from './adapter/bus.js';
import type { ServerConfig } from './config.js';
import { NewSessionClock, refuseWhileDraining, spreadDisconnects } from './drain.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { TokenBucket } from './rate-limit.js';
import { createRebalancer } from './rebalance.js';

export type AckReply = ({ ok: true } & Record<string, unknown>) | { ok: false; error: string };

export interface EventContext {
  socket: Socket;
  io: Server;
  logger: Logger;
  config: ServerConfig;
  /**
   * The Redis Cluster slot that carries a room's traffic, and whether this server reaches the
   * slot's master right now (if not, publishes to the room are held for a bounded time).
   */
  roomSlot: (room: string) => { slot: number; masterReachable: boolean };
  /**
   * Resolves true once this server receives the room's traffic and every other member server
   * knows it (so no later publish can miss it); false after a bounded wait (shard down, slow peer).
   */
  roomSubscribed: (room: string) => Promise<boolean>;
}

export interface EventHandler<T> {
  schema: z.ZodType<T>;
  handle(payload: T, ctx: EventContext): AckReply | Promise<AckReply>;
}

/** Types a handler's payload from its schema. */
export function defineEvent<T>(
  schema: z.ZodType<T>,
  handle: (payload: T, ctx: EventContext) => AckReply | Promise<AckReply>,
): EventHandler<T> {
  return { schema, handle };
}

export interface ServerHandlers {
  /** Client events by name; any other event name is refused with an error acknowledgement. */
  events: Record<string, EventHandler<unknown>>;
  /** Called for every new connection after the built-in middleware is attached. */
  onConnection?(socket: Socket, ctx: Omit<EventContext, 'socket'>): void;
}

export interface CreateServerOptions {
  redisPassword?: string | undefined;
  /** HS256 key clients' tokens are checked with when config.clientAuth is jwt. */
  clientAuthKey?: string | undefined;
  logger?: Logger;
  fastPaths?: Partial<FastPaths>;
  /** Hold and retry timings of the Redis bus (tests shorten them). */
  busTimings?: Partial<BusTimings>;
}

export interface ServerHandle {
  io: Server;
  metrics: ServerMetrics;
  bus: ClusterBus;
  logger: Logger;
  port: number;
  opsPort: number;
  isReady(): boolean;
  isDraining(): boolean;
  /** Stops being ready, refuses new sessions and disconnects clients spread over drainSeconds. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Server-side event every server answers with a CensusReply. */
export const CENSUS_EVENT = 'socketfleet:census';

export interface CensusReply {
  pid: number;
  port: number;
  clients: number;
  draining: boolean;
}

function listen(server: HttpServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Node's default backlog is 511, which would make the somaxconn sysctl pointless; the kernel
    // caps this at net.core.somaxconn, so the pod's tuning decides the accept queue.
    server.listen({ port, backlog: 65535 }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function hasBufferutil(): boolean {
  try {
    createRequire(import.meta.url).resolve('bufferutil');
    return process.env.WS_NO_BUFFER_UTIL === undefined;
  } catch {
    return false;
  }
}

function describeIssue(event: string, error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return `invalid "${event}" payload.`;
  const where = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  return `invalid "${event}" payload: ${where}${issue.message}`;
}

/**
 * A production Socket.IO server on the room-sharded Redis adapter, with ops endpoints, metrics,
 * per-socket rate limiting, payload validation and graceful drain. The image's relay is one
 * `handlers` value; a team can build its own image with its own handlers.
 */
export async function createServer(
  config: ServerConfig,
  handlers: ServerHandlers,
  options: CreateServerOptions = {},
): Promise<ServerHandle> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  let draining = false;
  let closed = false;
  let boundPort = config.port;
  const newSessions = new NewSessionClock();
  // One line per kind per second: a failover under load must not flood the logs.
  const lastLog = new Map<string, number>();
  const rateLimited = (kind: string): boolean => {
    const now = Date.now();
    if (now - (lastLog.get(kind) ?? 0) < 1000) return true;
    lastLog.set(kind, now);
    return false;
  };

  const bus = new ClusterBus({
    nodes: config.redis.nodes,
    password: options.redisPassword,
    timings: options.busTimings,
    hooks: {
      onPublish: () => metrics.busPublishes.inc(),
      onPublishFailed: (reason, err) => {
        metrics.busPublishFailed.inc({ reason });
        if (!rateLimited(`publish-${reason}`))
          logger.warn(
            { reason, err: err.message },
            'publishes lost: other servers did not receive them',
          );
      },
      onHeld: (held) => metrics.busPublishesHeld.set(held),
      onError: (err, node) => {
        metrics.redisErrors.inc({ source: node === undefined ? 'cluster' : 'node' });
        if (!rateLimited(`error-${node ?? 'cluster'}`))
          logger.warn({ node, err: err.message }, 'redis cluster error');
      },
      onReady: (ready) => {
        metrics.redisReady.set(ready ? 1 : 0);
        logger.info(
          { ready },
          ready ? 'redis cluster connected' : 'redis cluster connection closed',
        );
      },
    },
  });
  metrics.redisReady.set(0);

  const httpServer = createHttpServer();
  const ioOptions: Partial<ServerOptions> = {
    path: config.path,
    transports: config.transports,
    pingInterval: config.pingIntervalMs,
    pingTimeout: config.pingTimeoutMs,
    maxHttpBufferSize: config.maxPayloadBytes,
    serveClient: false,
    // Compression would defeat the pre-encoded frames and costs CPU per recipient.
    perMessageDeflate: false,
    // engine.io asks only for new sessions (requests without a sid).
    allowRequest: (req, callback) => {
      if (draining) {
        refuseWhileDraining(req);
        callback('server is draining; reconnect to another server', false);
      } else {
        newSessions.noteHandshake();
        callback(null, true);
      }
    },
    adapter: createRoomShardedAdapter({
      bus,
      fastPaths: { ...config.fastPaths, ...options.fastPaths },
      hooks: {
        onLocalDelivery: (n) => metrics.eventsOut.inc(n),
        onBusMessage: () => metrics.busMessagesIn.inc(),
        onBusMessageDropped: (err) => {
          metrics.busMessagesDropped.inc();
          logger.warn({ err: err.message }, 'dropped a compressed broadcast from the bus');
        },
        onPublishSkipped: () => metrics.publishesSkipped.inc(),
        onHandshake: (result) => metrics.roomHandshakes.inc({ result }),
        onPublishFailed: (err) => logger.debug({ err: err.message }, 'broadcast publish failed'),
        onPublishRepaired: () => metrics.busPublishRepaired.inc(),
        onPublishShort: (missing) => {
          metrics.busPublishShort.inc(missing);
          if (!rateLimited('short'))
            logger.warn({ missing }, 'a room broadcast did not reach every member server');
        },
        onDuplicateDropped: () => metrics.busDuplicatesDropped.inc(),
      },
    }) as unknown as ServerOptions['adapter'],
  };
  if (config.corsOrigins.length > 0)
    ioOptions.cors = { origin: config.corsOrigins, credentials: true };
  if (config.parser === 'msgpack') ioOptions.parser = msgpackParser;
  const io = new Server(httpServer, ioOptions);

  const nsp = io.of('/');
  // Before the first connection can arrive: no client skips the check.
  if (config.clientAuth === 'jwt')
    io.use(clientAuthMiddleware(Buffer.from(options.clientAuthKey ?? '', 'utf8')));
  const baseContext: Omit<EventContext, 'socket'> = {
    io,
    logger,
    config,
    roomSlot: (room) => {
      const channel = `socket.io#/#${room}#`;
      return { slot: ClusterBus.slotOf(channel), masterReachable: bus.ownerReachable(channel) };
    },
    roomSubscribed: (room) => (nsp.adapter as unknown as ShardedAdapter).roomReady(room),
  };
  const knownEvents = new Set(Object.keys(handlers.events));

  // Any server (or an operator tool holding a library server) can ask the whole cluster for a
  // head count with `io.serverSideEmitWithAck(CENSUS_EVENT)`.
  nsp.on(CENSUS_EVENT, (ack: unknown) => {
    if (typeof ack !== 'function') return;
    (ack as (reply: CensusReply) => void)({
      pid: process.pid,
      port: boundPort,
      clients: io.engine.clientsCount,
      draining,
    });
  });

  io.on('connection', (socket) => {
    const bucket = new TokenBucket(config.eventsPerSecond);
    const context: EventContext = { ...baseContext, socket };
    socket.use((packet, next) => {
      const [event, ...args] = packet as [unknown, ...unknown[]];
      const last = args[args.length - 1];
      const ack = typeof last === 'function' ? (last as (reply: AckReply) => void) : undefined;
      const name = typeof event === 'string' && knownEvents.has(event) ? event : undefined;
      metrics.eventsIn.inc({ event: name ?? 'unknown' });
      if (!bucket.take()) {
        metrics.rejectedEvents.inc({ reason: 'rate-limited' });
        ack?.({
          ok: false,
          error: `rate limit exceeded: at most ${config.eventsPerSecond} events per second per connection.`,
        });
        return;
      }
      if (name === undefined) {
        metrics.rejectedEvents.inc({ reason: 'unknown-event' });
        ack?.({
          ok: false,
          error: `unknown event ${JSON.stringify(String(event)).slice(0, 80)}; this server accepts: ${[...knownEvents].join(', ')}.`,
        });
        return;
      }
      next();
    });
    for (const [event, handler] of Object.entries(handlers.events)) {
      socket.on(event, (...args: unknown[]) => {
        const last = args[args.length - 1];
        const ack = typeof last === 'function' ? (last as (reply: AckReply) => void) : undefined;
        const payload = ack ? args.slice(0, -1)[0] : args[0];
        const parsed = handler.schema.safeParse(payload);
        if (!parsed.success) {
          metrics.rejectedEvents.inc({ reason: 'invalid-payload' });
          ack?.({ ok: false, error: describeIssue(event, parsed.error) });
          return;
        }
        Promise.resolve()
          .then(() => handler.handle(parsed.data, context))
          .then(
            (reply) => ack?.(reply),
            (err: unknown) => {
              metrics.rejectedEvents.inc({ reason: 'handler-error' });
              logger.error(
                { event, err: err instanceof Error ? err.message : String(err) },
                'event handler failed',
              );
              ack?.({ ok: false, error: `"${event}" failed on the server; the error was logged.` });
            },
          );
      });
    }
    handlers.onConnection?.(socket, baseContext);
    // Socket.IO's documented memory saving: socket.handshake already holds what the request
    // told, and middleware and onConnection above have seen the request itself.
    if (!config.keepHttpRequest) (socket.conn as unknown as { request: unknown }).request = null;
  });

  // Readiness belongs to the process: once the client has had a slot map, a failing Redis node
  // only delays (or, past the hold, loses) the traffic of the rooms whose slots it owns, so it
  // must not take this server's clients away from it.
  const isReady = (): boolean => !draining && !closed && bus.hasBeenReady;

  const rebalancer = createRebalancer(io, logger);
  const opsServer = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/readyz') {
      const ready = isReady();
      const reason = draining
        ? 'draining'
        : closed
          ? 'closed'
          : !bus.hasBeenReady
            ? 'waiting for the first Redis Cluster slot map'
            : 'ready';
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${reason}\n`);
    } else if (url === '/prestop' || url.startsWith('/prestop?')) {
      newSessions.handle(req, res);
    } else if (url === '/rebalance') {
      rebalancer.handle(req, res);
    } else if (url === '/metrics') {
      metrics.connectedClients.set(io.engine.clientsCount);
      metrics.busPublishesHeld.set(bus.heldPublishes);
      let rooms = 0;
      for (const room of nsp.adapter.rooms.keys()) if (!nsp.adapter.sids.has(room)) rooms++;
      metrics.rooms.set(rooms);
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });

  let port: number;
  let opsPort: number;
  try {
    [port, opsPort] = await Promise.all([
      listen(httpServer, config.port),
      listen(opsServer, config.opsPort),
    ]);
  } catch (err) {
    await bus.close();
    httpServer.close();
    opsServer.close();
    throw err;
  }
  boundPort = port;
  logger.info(
    {
      port,
      opsPort,
      parser: config.parser,
      transports: config.transports,
      redisSeeds: config.redis.nodes.length,
      bufferutil: hasBufferutil(),
      // ws validates UTF-8 with Node's buffer.isUtf8 when utf-8-validate is absent (Node >= 18.14).
    },
    'socket.io server listening',
  );

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await new Promise<void>((resolve) => {
      void io.close(() => resolve());
    });
    await bus.close();
    await new Promise<void>((resolve) => opsServer.close(() => resolve()));
    opsServer.closeAllConnections();
  };

  let drainPromise: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    drainPromise ??= (async () => {
      draining = true;
      metrics.draining.set(1);
      const windowMs = config.drainSeconds * 1000;
      logger.info({ clients: io.engine.clientsCount, windowMs }, 'draining: disconnecting clients');
      await spreadDisconnects(io, windowMs);
      logger.info('drain complete');
    })();
    return drainPromise;
  };

  return {
    io,
    metrics,
    bus,
    logger,
    port,
    opsPort,
    isReady,
    isDraining: () => draining,
    drain,
    close,
  };
}
