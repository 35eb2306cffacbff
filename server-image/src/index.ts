// The library API of the server image: build your own image FROM ours with your own handlers.
export {
  createServer,
  defineEvent,
  CENSUS_EVENT,
  type CensusReply,
  type AckReply,
  type CreateServerOptions,
  type EventContext,
  type EventHandler,
  type ServerHandle,
  type ServerHandlers,
} from './server.js';
export { relayHandlers, RoomNameSchema, PublishSchema, RELAY_MESSAGE_EVENT } from './relay.js';
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
