import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { renderRedisConf, type RedisPodRef } from '../desired/redis.js';
import { renderRedisAclConf, type RedisPasswords } from '../desired/redis-acl.js';
import { redisTlsConfLines, type RedisTlsFiles } from '../desired/redis-tls.js';
import { resourceNames } from '../desired/names.js';
import { canConnect, waitFor } from './ports.js';
import { Supervised } from './process.js';

/** One Redis Cluster node run as a local process: the local stand-in for one shard pod. */
export interface RedisNodeProcess {
  ref: RedisPodRef;
  busPort: number;
  dir: string;
  proc: Supervised;
}

/**
 * The operator's redis.conf with the pod-specific directives replaced: loopback only, our ports
 * and data dir, the loopback address announced as the node's name, and the operator's ACL users
 * written in (instead of the pod's start-up include), in a file only we can read, so no password
 * shows up in `ps`. Replaced rather than appended because redis applies `dir` (a chdir) as soon
 * as it reads it. spec.redis.tls needs local certificate files (`tls`); without them the node
 * listens in plain TCP, as `socketfleet up` runs it.
 */
export function localRedisConf(
  cluster: RealtimeCluster,
  port: number,
  busPort: number,
  dataDir: string,
  passwords: RedisPasswords | undefined,
  tls?: RedisTlsFiles,
): string {
  const overrides = [
    'bind 127.0.0.1',
    ...(tls ? redisTlsConfLines(tls, port) : [`port ${port}`]),
    // Free ports are picked at random, so port + 10000 may be taken: the bus gets its own.
    `cluster-port ${busPort}`,
    'cluster-announce-hostname 127.0.0.1',
    `dir ${dataDir}`,
    'daemonize no',
    'logfile ""',
  ];
  const replaced = new Set([...overrides.map((l) => l.split(' ')[0]), 'include']);
  const plain = { ...cluster, spec: { ...cluster.spec, redis: { ...cluster.spec.redis } } };
  delete plain.spec.redis.tls;
  const base = renderRedisConf(tls ? cluster : plain)
    .split('\n')
    .filter(
      (l) => l.trim() !== '' && !l.startsWith('#') && !replaced.has(l.trim().split(/\s+/)[0]),
    );
  const acl = passwords ? renderRedisAclConf(passwords).trimEnd().split('\n') : [];
  return [...base, '# socketfleet up: local settings', ...overrides, ...acl].join('\n') + '\n';
}

export function localRedisRef(
  cluster: RealtimeCluster,
  shard: number,
  ordinal: number,
  port: number,
): RedisPodRef {
  return {
    shard,
    ordinal,
    pod: `${resourceNames(cluster.metadata.name).redisShard(shard)}-${ordinal}`,
    host: '127.0.0.1',
    port,
  };
}

/**
 * Starts (or restarts) one node. `fresh` wipes its data dir first, like a pod that comes back
 * on a new emptyDir: a new node id that the operator's planner must join in its role.
 */
export async function startRedisNode(opts: {
  cluster: RealtimeCluster;
  shard: number;
  ordinal: number;
  port: number;
  busPort: number;
  stateDir: string;
  passwords: RedisPasswords | undefined;
  redisServer: string;
  fresh?: boolean;
  /** Lines appended to the node's config (a test's own user). */
  extraConf?: string[];
  /** Certificate, key and CA files: TLS only, as spec.redis.tls makes the pods. */
  tls?: RedisTlsFiles;
}): Promise<RedisNodeProcess> {
  const ref = localRedisRef(opts.cluster, opts.shard, opts.ordinal, opts.port);
  const dir = join(opts.stateDir, `redis-${opts.shard}-${opts.ordinal}`);
  if (opts.fresh) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(opts.stateDir, 'logs'), { recursive: true });
  const conf = join(dir, 'redis.conf');
  const text =
    localRedisConf(opts.cluster, opts.port, opts.busPort, dir, opts.passwords, opts.tls) +
    (opts.extraConf ?? []).map((l) => l + '\n').join('');
  writeFileSync(conf, text, { mode: 0o600 });
  const name = `redis-${opts.shard}-${opts.ordinal}`;
  const proc = new Supervised(name, opts.redisServer, [conf], {
    logFile: join(opts.stateDir, 'logs', `${name}.log`),
  });
  await waitFor(
    `redis ${name} on port ${opts.port}`,
    () => canConnect(opts.port),
    20_000,
    () => proc.running,
  );
  return { ref, busPort: opts.busPort, dir, proc };
}
