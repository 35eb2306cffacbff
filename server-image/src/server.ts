import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { createRequire } from 'node:module';
import { Server, type Namespace, type ServerOptions } from 'socket.io';
import * as msgpackParser from 'socket.io-msgpack-parser';
import {
  createRoomShardedAdapter,
  type FastPaths,
  type ShardedAdapter,
} from './adapter/sharded-adapter.js';
import { ClusterBus, type BusTimings } from './adapter/bus.js';
import { clientAuthMiddleware } from './client-auth.js';
import type { ServerConfig } from './config.js';
import { NewSessionClock, refuseWhileDraining, spreadDisconnects } from './drain.js';
import { EXIT_CONFIG, loadConfig } from './load-config.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { careForEveryNamespace, releaseUpgradeRequests } from './namespaces.js';
import { createOpsServer } from './ops-http.js';
import { sessionTag } from './session-tag.js';
import { TrafficLog } from './traffic-log.js';

export interface SocketfleetOptions {
  /**
   * The server config; by default the operator's config file ($SOCKETFLEET_CONFIG, mounted from
   * `<name>-server-config`) or, without one, the SOCKETFLEET_* variables. The Redis password and
   * the client-auth key then come from REDIS_PASSWORD and SOCKETFLEET_CLIENT_AUTH_KEY.
   */
  config?: ServerConfig;
  redisPassword?: string | undefined;
  /** Redis ACL user; the default user when unset. */
  redisUsername?: string | undefined;
  /** TLS options for every Redis node connection (CA, client certificate). */
  redisTls?: ConnectionOptions | undefined;
  /** HS256 key clients' tokens are checked with when config.clientAuth is jwt. */
  clientAuthKey?: string | undefined;
  /**
   * The address the gateway reaches this server at (the pod IP): session ids then carry its
   * tag so the gateway routes a session's requests here whatever its hash ring does
   * (session-tag.ts). Omitted: plain engine.io ids, routed by the hash alone.
   */
  sessionAddress?: string | undefined;
  logger?: Logger;
  fastPaths?: Partial<FastPaths>;
  /** Hold and retry timings of the Redis bus (tests shorten them). */
  busTimings?: Partial<BusTimings>;
  /**
   * The HTTP server Socket.IO runs on (an Express app's, say), not listening yet: attach() makes
   * it listen on config.port. By default a bare one.
   */
  httpServer?: HttpServer;
  /** Socket.IO options laid over the ones the config gives (createServer only). */
  serverOptions?: Partial<ServerOptions>;
}

/** The operational side of a server: what the operator and the pod's probes talk to. */
export interface Ops {
  config: ServerConfig;
  logger: Logger;
  metrics: ServerMetrics;
  bus: ClusterBus;
  port: number;
  opsPort: number;
  isReady(): boolean;
  isDraining(): boolean;
  /**
   * The Redis Cluster slot that carries a room's traffic, and whether this server reaches the
   * slot's master right now (if not, publishes to the room are held for a bounded time).
   */
  roomSlot(room: string, nsp?: string): { slot: number; masterReachable: boolean };
  /**
   * Resolves true once this server receives the room's traffic and every other member server
   * knows it (so no later publish can miss it); false after a bounded wait (shard down, slow peer).
   */
  roomSubscribed(room: string, nsp?: Namespace): Promise<boolean>;
  /** Stops being ready, refuses new sessions and disconnects clients spread over drainSeconds. */
  drain(): Promise<void>;
  close(): Promise<void>;
  /**
   * Drains on SIGTERM and closes on SIGINT, as the image's entrypoint does, within the pod's
   * grace period; resolves with the exit code once done.
   */
  untilSignal(): Promise<number>;
}

export interface Socketfleet {
  io: Server;
  ops: Ops;
}

/** Server-side event every server answers with a CensusReply. */
export const CENSUS_EVENT = 'socketfleet:census';

export interface CensusReply {
  pid: number;
  port: number;
  clients: number;
  draining: boolean;
}

/** A config problem, with one line per problem; the entrypoint exits with `exitCode` (78). */
export class ConfigError extends Error {
  readonly exitCode = EXIT_CONFIG;
  constructor(readonly problems: string[]) {
    super(`invalid socketfleet server config: ${problems.join(' ')}`);
  }
}

/** Time left after the drain window for closing connections before the process must be gone. */
const CLOSE_MARGIN_MS = 5000;

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

function resolveOptions(
  options: SocketfleetOptions,
): SocketfleetOptions & { config: ServerConfig } {
  if (options.config) return { ...options, config: options.config };
  const loaded = loadConfig(process.env);
  if (!loaded.ok) throw new ConfigError(loaded.problems);
  return {
    redisPassword: loaded.redisPassword,
    redisUsername: loaded.redis.username,
    redisTls: loaded.redis.tls,
    clientAuthKey: loaded.clientAuthKey,
    ...options,
    config: loaded.config,
  };
}

/** The Socket.IO options a config gives; the adapter and allowRequest are added by attach(). */
export function serverOptions(config: ServerConfig): Partial<ServerOptions> {
  const opts: Partial<ServerOptions> = {
    path: config.path,
    transports: config.transports,
    pingInterval: config.pingIntervalMs,
    pingTimeout: config.pingTimeoutMs,
    maxHttpBufferSize: config.maxPayloadBytes,
    serveClient: false,
    // Compression would defeat the pre-encoded frames and costs CPU per recipient.
    perMessageDeflate: false,
    // A dynamic namespace holds an adapter with two Redis subscriptions; without this, every
    // team or document namespace a pod ever saw would keep them for the life of the process.
    cleanupEmptyChildNamespaces: true,
  };
  if (config.corsOrigins.length > 0) opts.cors = { origin: config.corsOrigins, credentials: true };
  if (config.parser === 'msgpack') opts.parser = msgpackParser;
  // Connection state recovery: the adapter sees this option and keeps sessions and logs in Redis.
  // Middlewares (client auth) run on every reconnect, recovered or not.
  if (config.connectionStateRecovery.enabled)
    opts.connectionStateRecovery = {
      maxDisconnectionDuration: config.connectionStateRecovery.maxDisconnectionSeconds * 1000,
      skipMiddlewares: false,
    };
  return opts;
}

/**
 * A standard Socket.IO `Server` configured by the operator's config: the room-sharded Redis
 * adapter, parser, heartbeats, payload limit, CORS, the ops endpoints and graceful drain. What
 * the server does with its clients is ordinary Socket.IO code on `io`; the relay is one such app.
 */
export async function createServer(options: SocketfleetOptions = {}): Promise<Socketfleet> {
  const resolved = resolveOptions(options);
  // The one place the Server is constructed: options that belong to the Server itself go here.
  const io = new Server({ ...serverOptions(resolved.config), ...resolved.serverOptions });
  const ops = await attach(io, resolved);
  return { io, ops };
}

/**
 * Gives a Server you created (`new Server(opts)`, not bound to an HTTP server yet) what
 * createServer() gives: the adapter, the config's heartbeats, payload limit, transports and
 * CORS, client authentication on every namespace when the config asks for it, the ops endpoints
 * and the drain; then listens on config.port. Its parser must be the config's.
 */
export async function attach(io: Server, options: SocketfleetOptions = {}): Promise<Ops> {
  const { config, ...rest } = resolveOptions(options);
  if (io.httpServer !== undefined) {
    throw new Error(
      'attach(): the Server is already bound to an HTTP server; create it with new Server(options) and let attach() listen on the configured port.',
    );
  }
  const usesMsgpack = (io as unknown as { _parser: unknown })._parser === msgpackParser;
  if (usesMsgpack !== (config.parser === 'msgpack')) {
    throw new Error(
      `attach(): the config says parser ${config.parser} but the Server was created with ${usesMsgpack ? 'msgpack' : 'the default JSON parser'}; create it with new Server(serverOptions(config)).`,
    );
  }
  const logger = rest.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const traffic = new TrafficLog(logger, config.trafficLogSeconds * 1000);
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
    password: rest.redisPassword,
    username: rest.redisUsername,
    tls: rest.redisTls,
    timings: rest.busTimings,
    hooks: {
      onPublish: () => {
        metrics.busPublishes.inc();
        traffic.add('busOut');
      },
      onPublishFailed: (reason, err) => {
        metrics.busPublishFailed.inc({ reason });
        traffic.add('lost');
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

  io.path(config.path);
  io.serveClient(false);
  // engine.io reads these from the Server's options when attached below; they are in place
  // before the adapter is created, which reads connectionStateRecovery from them.
  const engineOptions: Partial<ServerOptions> = {
    ...serverOptions(config),
    // engine.io asks only for new sessions (requests without a sid).
    allowRequest: (req, callback) => {
      if (draining) {
        refuseWhileDraining(req);
        callback('server is draining; reconnect to another server', false);
      } else {
        newSessions.noteHandshake();
        metrics.sessions.inc();
        traffic.add('sessions');
        callback(null, true);
      }
    },
  };
  delete engineOptions.parser;
  const serverOpts = (io as unknown as { opts: Partial<ServerOptions> }).opts;
  for (const key of Object.keys(engineOptions) as (keyof ServerOptions)[]) {
    // createServer's own serverOptions (a test's short heartbeats) win over the config.
    if (key !== 'allowRequest' && options.serverOptions?.[key] !== undefined) continue;
    (serverOpts as Record<string, unknown>)[key] = engineOptions[key];
  }

  // Every namespace, dynamic ones included, gets this adapter (socket.io re-initialises the ones
  // that exist already), so presence, fast paths and cluster requests hold in all of them.
  io.adapter(
    createRoomShardedAdapter({
      bus,
      fastPaths: { ...config.fastPaths, ...rest.fastPaths },
      hooks: {
        onLocalDelivery: (n) => {
          metrics.eventsOut.inc(n);
          traffic.add('delivered', n);
        },
        onBusMessage: () => {
          metrics.busMessagesIn.inc();
          traffic.add('busIn');
        },
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
          traffic.add('lost', missing);
          if (!rateLimited('short'))
            logger.warn({ missing }, 'a room broadcast did not reach every member server');
        },
        onDuplicateDropped: () => metrics.busDuplicatesDropped.inc(),
        onSequenceGap: (n) => metrics.busSequenceGaps.inc(n),
        onSequenceGapFilled: (n) => metrics.busSequenceGapsFilled.inc(n),
        onRestore: (result, err) => {
          metrics.recoveryRestores.inc({ result });
          if (err && !rateLimited('restore'))
            logger.warn({ err: err.message }, 'session restore failed; the client gets a new one');
        },
        onReplayed: (n) => metrics.recoveryReplayed.inc(n),
        onJournalFailed: (err) => {
          metrics.recoveryErrors.inc({ kind: 'journal' });
          if (!rateLimited('journal'))
            logger.warn({ err: err.message }, 'delivery journal write failed');
        },
        onSessionSaveFailed: (err) => {
          metrics.recoveryErrors.inc({ kind: 'session' });
          if (!rateLimited('session')) logger.warn({ err: err.message }, 'session save failed');
        },
      },
    }) as unknown as Parameters<Server['adapter']>[0],
  );

  careForEveryNamespace(io, {
    metrics,
    auth:
      config.clientAuth === 'jwt'
        ? clientAuthMiddleware(Buffer.from(rest.clientAuthKey ?? '', 'utf8'))
        : undefined,
    keepHttpRequest: config.keepHttpRequest,
    onEvent: () => traffic.add('eventsIn'),
  });

  // Any server (or an operator tool holding a library server) can ask the whole cluster for a
  // head count with `io.serverSideEmitWithAck(CENSUS_EVENT)`.
  io.of('/').on(CENSUS_EVENT, (ack: unknown) => {
    if (typeof ack !== 'function') return;
    (ack as (reply: CensusReply) => void)({
      pid: process.pid,
      port: boundPort,
      clients: io.engine.clientsCount,
      draining,
    });
  });

  const httpServer = rest.httpServer ?? createHttpServer();
  io.attach(httpServer);
  releaseUpgradeRequests(io);
  const sessionAddress = rest.sessionAddress;
  if (sessionAddress !== undefined) {
    const plainId = io.engine.generateId.bind(io.engine);
    // The tag of the bound port, known by the time the first handshake can arrive.
    io.engine.generateId = async (req) =>
      `${sessionTag(sessionAddress, boundPort)}${await plainId(req)}`;
  }
  const opsServer = createOpsServer({
    io,
    bus,
    metrics,
    newSessions,
    draining: () => draining,
    closed: () => closed,
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
      clientAuth: config.clientAuth,
      bufferutil: hasBufferutil(),
    },
    'socket.io server listening',
  );
  traffic.start();

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await new Promise<void>((resolve) => {
      void io.close(() => resolve());
    });
    traffic.stop();
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
      // Hand-off: sessions are in Redis before any client is sent away to another server.
      let saved = 0;
      for (const nsp of (io as unknown as { _nsps: Map<string, Namespace> })._nsps.values())
        saved += await (nsp.adapter as unknown as ShardedAdapter).saveSessions();
      if (saved > 0) logger.info({ sessions: saved }, 'draining: sessions saved');
      await spreadDisconnects(io, windowMs);
      logger.info('drain complete');
    })();
    return drainPromise;
  };

  const ops: Ops = {
    config,
    logger,
    metrics,
    bus,
    port,
    opsPort,
    isReady: () => !draining && !closed && bus.hasBeenReady,
    isDraining: () => draining,
    roomSlot: (room, nsp = '/') => {
      const channel = `socket.io#${nsp}#${room}#`;
      return { slot: ClusterBus.slotOf(channel), masterReachable: bus.ownerReachable(channel) };
    },
    roomSubscribed: (room, nsp = io.of('/')) =>
      (nsp.adapter as unknown as ShardedAdapter).roomReady(room),
    drain,
    close,
    untilSignal: () => untilSignal(ops),
  };
  return ops;
}

function untilSignal(ops: Ops): Promise<number> {
  const { logger, config } = ops;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals, drain: boolean): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, drain ? 'draining before exit' : 'closing');
      // The pod's grace period must exceed drainSeconds plus this margin (the operator enforces it).
      const deadline = setTimeout(
        () => {
          logger.warn('drain deadline passed; exiting');
          resolve(0);
        },
        (drain ? config.drainSeconds * 1000 : 0) + CLOSE_MARGIN_MS,
      );
      deadline.unref();
      (drain ? ops.drain() : Promise.resolve())
        .then(() => ops.close())
        .then(
          () => {
            clearTimeout(deadline);
            logger.info('closed');
            resolve(0);
          },
          (err: unknown) => {
            logger.error({ err: err instanceof Error ? err.message : String(err) }, 'close failed');
            resolve(1);
          },
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM', true));
    process.once('SIGINT', () => stop('SIGINT', false));
  });
}
