import { z } from 'zod';

/**
 * The contract between the operator and the server image: the operator's builders write a JSON
 * file of this shape (mounted from a ConfigMap) and the server parses it with this schema.
 * Secrets never travel in the file: the Redis password comes from a file mounted from a Secret
 * (REDIS_PASSWORD_FILE), the TLS material likewise (REDIS_TLS_*).
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
    trafficLogSeconds: z
      .int()
      .min(0)
      .max(3600)
      .default(30)
      .describe(
        'Every this many seconds, one info line "traffic" with what this server carried since the last one (new sessions, client events, deliveries to its clients, bus messages in and out, publishes lost); nothing when nothing moved; 0 turns it off.',
      ),
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
/** Environment variable holding the Redis password (a laptop run); unset means no auth. */
export const REDIS_PASSWORD_ENV = 'REDIS_PASSWORD';
/** Path of a file holding the Redis password (mounted from a Secret); wins over REDIS_PASSWORD. */
export const REDIS_PASSWORD_FILE_ENV = 'REDIS_PASSWORD_FILE';
/** Redis ACL user name; the default user when unset. */
export const REDIS_USERNAME_ENV = 'REDIS_USERNAME';
/**
 * TLS to Redis: REDIS_TLS=true turns it on; the CA, client certificate and key are files
 * (mounted from Secrets), and the server name overrides the node host for the certificate check.
 */
export const REDIS_TLS_ENV = {
  enabled: 'REDIS_TLS',
  caFile: 'REDIS_TLS_CA_FILE',
  certFile: 'REDIS_TLS_CERT_FILE',
  keyFile: 'REDIS_TLS_KEY_FILE',
  serverName: 'REDIS_TLS_SERVER_NAME',
} as const;
/** Where the operator mounts the config file in the server container. */
export const DEFAULT_CONFIG_PATH = '/etc/socketfleet/server.json';
