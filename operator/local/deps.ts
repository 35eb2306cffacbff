import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Binaries {
  redisServer: string;
  nginx: string;
}

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const INSTALL = 'apt-get install -y redis-server nginx';

export function findBinary(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  // Debian puts nginx in /usr/sbin, which a non-root PATH often lacks.
  const dirs = [...(env.PATH ?? '').split(delimiter).filter((d) => d.length > 0), ...SBIN];
  for (const dir of dirs) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function apt(args: string[], log: (line: string) => void): boolean {
  log(`running: apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

/**
 * Finds redis-server and nginx, installing them from Debian when we are root and apt-get exists,
 * so `up` is the only command a fresh machine needs.
 */
export function ensureBinaries(log: (line: string) => void): Binaries | { error: string } {
  let redisServer = findBinary('redis-server');
  let nginx = findBinary('nginx');
  if (redisServer && nginx) return { redisServer, nginx };
  const missing = [!redisServer ? 'redis-server' : '', !nginx ? 'nginx' : '']
    .filter((s) => s)
    .join(' and ');
  const root = process.getuid?.() === 0;
  if (!root || !findBinary('apt-get')) {
    return {
      error: `${missing} not found; install ${missing === 'nginx' ? 'it' : 'them'} with: sudo ${INSTALL}`,
    };
  }
  log(`${missing} not found; installing from Debian`);
  const args = ['install', '-y', '--no-install-recommends', 'redis-server', 'nginx'];
  if (!apt(args, log)) {
    // A fresh image often has no package lists yet.
    if (!apt(['update'], log) || !apt(args, log))
      return { error: `Installing ${missing} failed; run: ${INSTALL}` };
  }
  redisServer = findBinary('redis-server');
  nginx = findBinary('nginx');
  if (!redisServer || !nginx)
    return { error: `${missing} still not found after apt-get; run: ${INSTALL}` };
  return { redisServer, nginx };
}
