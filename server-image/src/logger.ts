import { pino, type Logger } from 'pino';
import type { ServerConfig } from './config.js';

export type { Logger };

/** JSON logs on stdout; the Redis password is never part of the config, and redaction guards the rest. */
export function createLogger(level: ServerConfig['logLevel']): Logger {
  return pino({
    level,
    base: { component: 'socketfleet-server', pid: process.pid },
    redact: ['password', '*.password', 'redisPassword'],
  });
}
