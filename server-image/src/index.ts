// The library API of the server image: a standard Socket.IO Server configured by the operator's
// config, plus opt-in pieces (validated events, rate limit, client auth) and the relay app.
export {
  createServer,
  attach,
  serverOptions,
  ConfigError,
  CENSUS_EVENT,
  type CensusReply,
  type Ops,
  type Socketfleet,
  type SocketfleetOptions,
} from './server.js';
export {
  defineEvent,
  validatedEvents,
  type AckReply,
  type EventHandler,
  type ValidatedEventsOptions,
} from './events.js';
export { rateLimit, TokenBucket, type RateLimitOptions } from './rate-limit.js';
export { clientAuthMiddleware as jwtAuth, signToken, verifyToken } from './client-auth.js';
export {
  relayApp,
  relayEvents,
  RoomNameSchema,
  PublishSchema,
  RELAY_MESSAGE_EVENT,
} from './relay.js';
export { loadConfig, EXIT_CONFIG, type LoadedConfig } from './load-config.js';
export {
  ServerConfigSchema,
  type ServerConfig,
  type ServerConfigInput,
  CONFIG_PATH_ENV,
  REDIS_PASSWORD_ENV,
  REDIS_PASSWORD_FILE_ENV,
  REDIS_USERNAME_ENV,
  REDIS_TLS_ENV,
  DEFAULT_CONFIG_PATH,
} from './config.js';
export { loadRedisCredentials, type RedisCredentials } from './redis-auth.js';
export { createLogger, type Logger } from './logger.js';
export { createMetrics, type ServerMetrics } from './metrics.js';
export {
  ClusterBus,
  DEFAULT_BUS_TIMINGS,
  type BusHooks,
  type BusTimings,
  type RedisNodeAddress,
} from './adapter/bus.js';
export {
  createRoomShardedAdapter,
  ALL_FAST_PATHS,
  type FastPaths,
} from './adapter/sharded-adapter.js';
