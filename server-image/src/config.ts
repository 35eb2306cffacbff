import { z } from 'zod';

/**
 * The contract between the operator and the server image: the operator's builders write a JSON
 * file of this shape (mounted from a ConfigMap) and the server parses it with this schema.
 * Secrets never travel in the file: the Redis password comes from the REDIS_PASSWORD variable,
 * which the operator fills from a Secret.
 */

export const RedisNodeAddressSchema = z.object({
  host: z.string().min(1).describe('Host name or IP of a Redis Cluster node.'),
  port: z.int().min(1).max(65535).default(6379).describe('Port of the node.'),
});

export const ServerConfigSchema = z
  .object({
    port: z.int().min(1).max(65535).default(3000).describe('Port of the Socket.IO listener.'),
    opsPort: z
      .int()
      .min(1)
      .max(65535)
      .default(9090)
      .describe('Port of /healthz, /readyz and /metrics.'),
    path: z.string().startsWith('/').default('/socket.io').describe('HTTP path of Socket.IO.'),
    parser: z
      .enum(['msgpack', 'json'])
      .default('msgpack')
      .describe('Wire encoding; clients must use the matching parser.'),
    pingIntervalMs: z.int().min(1000).max(300000).default(25000).describe('Heartbeat interval.'),
    pingTimeoutMs: z
      .int()
      .min(1000)
      .max(300000)
      .default(20000)
      .describe('How long a heartbeat answer may take before the connection is closed.'),
    maxPayloadBytes: z
      .int()
      .min(1024)
      .max(104857600)
      .default(100000)
      .describe('Largest message a client may send; a larger one closes its connection.'),
    transports: z
      .array(z.enum(['polling', 'websocket']))
      .min(1)
      .default(['polling', 'websocket']),
    corsOrigins: z
      .array(z.string().min(1))
      .default([])
      .describe('Browser origins allowed by CORS; empty sends no CORS headers.'),
    eventsPerSecond: z
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe('Per-connection token bucket: events per second, bursts up to one second.'),
    roomsPerConnection: z
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe('Rooms one connection may be in at once (each room is a Redis subscription).'),
    keepHttpRequest: z
      .boolean()
      .default(false)
      .describe(
        "Keep each session's first HTTP request as socket.request after the connection handlers ran (express-session needs it); off frees about 4 KB per connection, and socket.handshake keeps headers, query and address.",
      ),
    drainSeconds: z
      .int()
      .min(0)
      .max(3600)
      .default(20)
      .describe('On SIGTERM, window over which clients are disconnected before exit.'),
    redis: z
      .object({
        nodes: z
          .array(RedisNodeAddressSchema)
          .min(1)
          .describe(
            'Seed nodes of one Redis Cluster (any of its nodes); the client learns the rest, and every later change of masters and slots, from the cluster itself.',
          ),
      })
      .strict()
      .describe('The Redis Cluster that carries messages between servers.'),
    clientAuth: z
      .enum(['jwt', 'none'])
      .default('none')
      .describe(
        'jwt: every client must send a valid HS256 JWT as handshake auth.token, checked with the key in SOCKETFLEET_CLIENT_AUTH_KEY; none: anyone may connect. The operator writes jwt unless the RealtimeCluster says auth.mode: none.',
      ),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
      .default('info')
      .describe('pino log level.'),
    connectionStateRecovery: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Give a reconnecting client its id, rooms, data and the broadcasts it missed, on any server.',
          ),
        maxDisconnectionSeconds: z
          .int()
          .min(1)
          .max(3600)
          .default(120)
          .describe('How long after a disconnect a session can still be recovered.'),
      })
      .strict()
      .prefault({})
      .describe(
        "Socket.IO's connection state recovery, stored on the Redis Cluster (per-room logs on each room's shard, sessions, per-server delivery journals).",
      ),
    fastPaths: z
      .object({
        localFirst: z
          .boolean()
          .default(true)
          .describe('Write to local members before publishing to Redis.'),
        binaryFrames: z
          .boolean()
          .default(true)
          .describe('Build one WebSocket frame per broadcast for binary (msgpack) packets too.'),
        msgpackBus: z
          .boolean()
          .default(true)
          .describe('Encode server-to-server messages with msgpack.'),
        skipLonelyRooms: z
          .boolean()
          .default(true)
          .describe(
            'Keep a room broadcast off Redis when no other server has members in the room.',
          ),
        directWrites: z
          .boolean()
          .default(true)
          .describe(
            "Write a broadcast's shared frame straight to the WebSocket when engine.io has nothing queued for it.",
          ),
        compressBus: z
          .boolean()
          .default(true)
          .describe(
            'Deflate room broadcasts on the Redis bus when that saves an eighth; every server must understand it.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Adapter fast paths; all on by default, switch one off to measure what it buys.'),
  })
  .strict();

export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

/** Environment variable holding the path of the JSON config file. */
export const CONFIG_PATH_ENV = 'SOCKETFLEET_CONFIG';
/** Environment variable holding the Redis password (from a Secret); unset means no auth. */
export const REDIS_PASSWORD_ENV = 'REDIS_PASSWORD';
/** Where the operator mounts the config file in the server container. */
export const DEFAULT_CONFIG_PATH = '/etc/socketfleet/server.json';
