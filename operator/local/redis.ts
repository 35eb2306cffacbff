import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { renderRedisConf } from '../desired/redis.js';
import { canConnect, waitFor } from './ports.js';
import { Supervised } from './process.js';

export interface RedisShardProcess {
  index: number;
  port: number;
  proc: Supervised;
}

/**
 * The operator's redis.conf with the pod-specific directives replaced: loopback only, our port
 * and data dir, and the password, in a file only we can read, so it never shows up in `ps`.
 * Replaced rather than appended because redis applies `dir` (a chdir) as soon as it reads it.
 */
export function localRedisConf(
  cluster: RealtimeCluster,
  port: number,
  dataDir: string,
  password: string | undefined,
): string {
  const overrides = [
    'bind 127.0.0.1',
    `port ${port}`,
    `dir ${dataDir}`,
    'daemonize no',
    'logfile ""',
  ];
  if (password !== undefined) overrides.push(`requirepass ${password}`);
  const replaced = new Set(overrides.map((l) => l.split(' ')[0]));
  const base = renderRedisConf(cluster)
    .split('\n')
    .filter((l) => l.trim() !== '' && !replaced.has(l.trim().split(/\s+/)[0]));
  return [...base, '# socketfleet up: local settings', ...overrides].join('\n') + '\n';
}

export async function startRedisShard(opts: {
  cluster: RealtimeCluster;
  index: number;
  port: number;
  stateDir: string;
  password: string | undefined;
  redisServer: string;
}): Promise<RedisShardProcess> {
  const dir = join(opts.stateDir, `redis-${opts.index}`);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'redis.conf');
  writeFileSync(conf, localRedisConf(opts.cluster, opts.port, dir, opts.password), { mode: 0o600 });
  const proc = new Supervised(`redis-${opts.index}`, opts.redisServer, [conf], {
    logFile: join(opts.stateDir, 'logs', `redis-${opts.index}.log`),
  });
  await waitFor(
    `redis shard ${opts.index} on port ${opts.port}`,
    () => canConnect(opts.port),
    20_000,
    () => proc.running,
  );
  return { index: opts.index, port: opts.port, proc };
}
