import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  REDIS_PASSWORD_ENV,
  REDIS_PASSWORD_FILE_ENV,
  REDIS_TLS_ENV,
  REDIS_USERNAME_ENV,
} from './config.js';

/** How the server logs in to Redis: an ACL user, its password, and optional TLS. */
export interface RedisCredentials {
  username: string | undefined;
  password: string | undefined;
  /** TLS options for every node connection; undefined for plain TCP. */
  tls: ConnectionOptions | undefined;
}

export type LoadedCredentials =
  { ok: true; credentials: RedisCredentials } | { ok: false; problems: string[] };

/**
 * Reads the Redis login from the environment and the files it names. A file that cannot be read
 * is a configuration error naming the variable; the contents never appear in a message.
 */
export function loadRedisCredentials(env: NodeJS.ProcessEnv): LoadedCredentials {
  const problems: string[] = [];
  const read = (variable: string): Buffer | undefined => {
    const path = env[variable];
    if (path === undefined || path === '') return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      problems.push(
        `${variable}: cannot read ${path} (${reason}); mount the file there or unset the variable.`,
      );
      return undefined;
    }
  };
  const nonEmpty = (v: string | undefined): string | undefined => (v === '' ? undefined : v);

  const fromFile = read(REDIS_PASSWORD_FILE_ENV);
  // A Secret file often ends with a newline that is not part of the password.
  const password =
    fromFile !== undefined
      ? fromFile.toString('utf8').replace(/\r?\n$/, '')
      : nonEmpty(env[REDIS_PASSWORD_ENV]);
  const username = nonEmpty(env[REDIS_USERNAME_ENV]);

  let tls: ConnectionOptions | undefined;
  const enabled = env[REDIS_TLS_ENV.enabled];
  if (enabled !== undefined && enabled !== '' && enabled !== 'false') {
    if (enabled !== 'true') {
      problems.push(
        `${REDIS_TLS_ENV.enabled}: must be true or false, not ${JSON.stringify(enabled)}.`,
      );
    }
    tls = {};
    const ca = read(REDIS_TLS_ENV.caFile);
    if (ca) tls.ca = ca;
    const cert = read(REDIS_TLS_ENV.certFile);
    const key = read(REDIS_TLS_ENV.keyFile);
    if ((cert === undefined) !== (key === undefined) && problems.length === 0) {
      problems.push(
        `${REDIS_TLS_ENV.certFile}: a client certificate needs its key too; set both ${REDIS_TLS_ENV.certFile} and ${REDIS_TLS_ENV.keyFile}, or neither.`,
      );
    }
    if (cert && key) {
      tls.cert = cert;
      tls.key = key;
    }
    const serverName = nonEmpty(env[REDIS_TLS_ENV.serverName]);
    if (serverName) tls.servername = serverName;
  }
  if (username !== undefined && password === undefined) {
    problems.push(
      `${REDIS_USERNAME_ENV}: a Redis user needs a password; set ${REDIS_PASSWORD_FILE_ENV} (or ${REDIS_PASSWORD_ENV}).`,
    );
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, credentials: { username, password, tls } };
}
