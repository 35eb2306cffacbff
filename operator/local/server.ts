import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerConfigInput } from '../../server-image/src/config.js';
import { CLIENT_AUTH_KEY_ENV } from '../../server-image/src/client-auth.js';
import {
  CONFIG_PATH_ENV,
  REDIS_PASSWORD_ENV,
  REDIS_PASSWORD_FILE_ENV,
  REDIS_USERNAME_ENV,
} from '../../server-image/src/config.js';
import { REDIS_USERS } from '../desired/redis-acl.js';
import { SESSION_ADDRESS_ENV } from '../../server-image/src/session-tag.js';
import { waitFor } from './ports.js';
import { Supervised } from './process.js';
import { serverEntrypoint } from './paths.js';

export interface ServerProcess {
  id: number;
  port: number;
  opsPort: number;
  /** The shard list the process was started with; a different one needs a restart. */
  shardsKey: string;
  proc: Supervised;
  ready: boolean;
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Starts one Socket.IO server through the image's own entrypoint, as the pod does. */
export async function startServer(opts: {
  id: number;
  port: number;
  opsPort: number;
  config: ServerConfigInput;
  shardsKey: string;
  stateDir: string;
  /** The file holding the servers' Redis password (user socketfleet-server); none without auth. */
  passwordFile: string | undefined;
  /** The JWT key clients' tokens are checked with (spec.auth.mode jwt). */
  clientAuthKey?: string | undefined;
}): Promise<ServerProcess> {
  const configPath = join(opts.stateDir, `server-${opts.id}.json`);
  writeFileSync(
    configPath,
    JSON.stringify({ ...opts.config, port: opts.port, opsPort: opts.opsPort }, null, 2) + '\n',
  );
  const env: NodeJS.ProcessEnv = { ...process.env, [CONFIG_PATH_ENV]: configPath };
  // Local servers listen on loopback, which is what the gateway's upstreams name.
  env[SESSION_ADDRESS_ENV] = '127.0.0.1';
  delete env[REDIS_PASSWORD_ENV];
  if (opts.passwordFile !== undefined) {
    env[REDIS_PASSWORD_FILE_ENV] = opts.passwordFile;
    env[REDIS_USERNAME_ENV] = REDIS_USERS.server;
  } else {
    delete env[REDIS_PASSWORD_FILE_ENV];
    delete env[REDIS_USERNAME_ENV];
  }
  if (opts.clientAuthKey !== undefined) env[CLIENT_AUTH_KEY_ENV] = opts.clientAuthKey;
  else delete env[CLIENT_AUTH_KEY_ENV];
  const proc = new Supervised(`server-${opts.id}`, 'sh', [serverEntrypoint()], {
    env,
    logFile: join(opts.stateDir, 'logs', `server-${opts.id}.log`),
  });
  const s: ServerProcess = {
    id: opts.id,
    port: opts.port,
    opsPort: opts.opsPort,
    shardsKey: opts.shardsKey,
    proc,
    ready: false,
  };
  await waitFor(
    `server-${opts.id} (see ${join(opts.stateDir, 'logs', `server-${opts.id}.log`)})`,
    () => httpOk(`http://127.0.0.1:${opts.opsPort}/readyz`),
    120_000,
    () => proc.running,
  );
  s.ready = true;
  return s;
}

export function isReady(opsPort: number): Promise<boolean> {
  return httpOk(`http://127.0.0.1:${opsPort}/readyz`);
}
