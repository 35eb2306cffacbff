import { createHash, createHmac } from 'node:crypto';

/**
 * Redis ACL layout of operator-run shards (and of `socketfleet up`): the default user is off,
 * and each party gets its own user with only what it needs. Redis 7.0 answers NOAUTH to any
 * command before AUTH, and NOPERM to a command or channel outside the user's rules.
 */

export const REDIS_USERS = {
  /** The Socket.IO servers: sharded pub/sub on the adapter's channels, and slot discovery. */
  server: 'socketfleet-server',
  /** The operator: forms, heals and reshards the cluster. */
  operator: 'socketfleet-operator',
  /** A replica authenticating to its master (masteruser/masterauth). */
  replication: 'socketfleet-replication',
  /** The optional redis_exporter sidecar (spec.redis.exporter): read-only introspection. */
  exporter: 'socketfleet-exporter',
} as const;

export type RedisUserRole = keyof typeof REDIS_USERS;

/**
 * What each user may run. Found by running real servers (ioredis 5 Cluster with sharded
 * subscribers), the operator's planner and replicas against redis-server 7.0 with these rules
 * and reading ACL LOG (test/dataplane/redis-acl.test.ts keeps them honest).
 */
export const REDIS_ACL_RULES: Record<RedisUserRole, string> = {
  // Channels: every name the adapter uses starts with `socket.io#` (room, namespace, and
  // request/response channels). CLUSTER SLOTS is how ioredis learns the slot
  // map; INFO is its ready check on every node connection; PUBSUB SHARDNUMSUB counts servers.
  // Keys: only connection state recovery's (recovery-keys.ts): room logs in each room channel's
  // slot, sessions and delivery journals, written by its scripts (EVAL/EVALSHA run them with
  // this user's rights). Granted whether or not a cluster turns recovery on, so turning it on
  // never restarts Redis; with it off the servers touch no key.
  server: [
    'resetkeys',
    'resetchannels',
    '&socket.io#*',
    '~socket.io#*',
    '~{socket.io#*',
    '~{s*}:sf-log:*',
    '~sf-session:*',
    '~sf-journal:*',
    '-@all',
    '+eval',
    '+evalsha',
    '+time',
    '+exists',
    '+xadd',
    '+xtrim',
    '+xrange',
    '+xrevrange',
    '+xinfo|stream',
    '+hget',
    '+hset',
    '+del',
    '+pexpire',
    '+ssubscribe',
    '+sunsubscribe',
    '+spublish',
    '+pubsub|shardnumsub',
    '+cluster|slots',
    '+cluster|shards',
    '+cluster|info',
    // ioredis marks its connections to replicas READONLY, and READWRITE once one is promoted.
    '+readonly',
    '+readwrite',
    '+info',
    '+ping',
    '+client|setname',
    '+hello',
    '+auth',
    '+quit',
  ].join(' '),
  // Every CLUSTER subcommand (meet, forget, addslotsrange, setslot, replicate, failover,
  // countkeysinslot, getkeysinslot) plus MIGRATE of a slot's keys: MIGRATE reads the keys on
  // the source and the target runs RESTORE-ASKING as the same user, so it needs every key (but
  // no command that reads or writes a value).
  operator: [
    'resetkeys',
    'resetchannels',
    '~*',
    '-@all',
    '+cluster',
    '+migrate',
    '+restore-asking',
    '+asking',
    // MIGRATE's connection to the target selects db 0 before RESTORE-ASKING.
    '+select',
    '+info',
    '+ping',
    '+client|setname',
    '+hello',
    '+auth',
    '+quit',
  ].join(' '),
  // redis_exporter: INFO and CLUSTER INFO carry every series the chart's alerts and dashboard
  // use; the rest are its optional collectors. No keys, no channels, nothing that writes.
  exporter: [
    'resetkeys',
    'resetchannels',
    '-@all',
    '+info',
    '+ping',
    '+cluster|info',
    '+config|get',
    '+slowlog|get',
    '+slowlog|len',
    '+latency|latest',
    '+client|setname',
    '+select',
    '+hello',
    '+auth',
    '+quit',
  ].join(' '),
  // What a replica sends its master to (re)sync.
  replication: [
    'resetkeys',
    'resetchannels',
    '-@all',
    '+psync',
    '+replconf',
    '+ping',
    '+auth',
  ].join(' '),
};

/** Data keys of the per-cluster Secret the operator creates (never reads). */
export const REDIS_SECRET_KEYS = {
  /** Plain text: the servers log in with it. */
  serverPassword: 'server-password',
  /** Plain text: the replicas' masterauth. */
  replicationPassword: 'replication-password',
  /** JSON {"redis://127.0.0.1:6379": password}: redis_exporter's --redis.password-file. */
  exporterPasswordMap: 'exporter-password-map.json',
  /** SHA-256 (hex) of each user's password: all a Redis node needs to check a login. */
  hash: (role: RedisUserRole): string => `${role}-password.sha256`,
} as const;

/** The smallest operator key accepted: an HMAC-SHA256 key shorter than this weakens it. */
export const OPERATOR_KEY_MIN_BYTES = 32;

/**
 * A user's password for one cluster, recomputed from the operator key whenever needed, so the
 * operator never reads it back from the Secret it created. The cluster UID (not its name)
 * makes a deleted and re-created cluster of the same name get new passwords.
 */
export function deriveRedisPassword(key: Buffer, clusterUid: string, role: RedisUserRole): string {
  return createHmac('sha256', key)
    .update(`socketfleet.dev/redis-acl/v1\0${clusterUid}\0${REDIS_USERS[role]}`)
    .digest('base64url');
}

export type RedisPasswords = Record<RedisUserRole, string>;

export function deriveRedisPasswords(key: Buffer, clusterUid: string): RedisPasswords {
  return {
    server: deriveRedisPassword(key, clusterUid, 'server'),
    operator: deriveRedisPassword(key, clusterUid, 'operator'),
    replication: deriveRedisPassword(key, clusterUid, 'replication'),
    exporter: deriveRedisPassword(key, clusterUid, 'exporter'),
  };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * redis.conf directives for the whole layout, passwords as SHA-256 (`#<hex>`), plus the
 * replica's own login to its master. For a file only Redis's user can read (socketfleet up,
 * tests); in Kubernetes the pod writes the same lines at start-up (redisAuthStartScript).
 */
export function renderRedisAclConf(passwords: RedisPasswords): string {
  const lines = ['user default off'];
  for (const role of Object.keys(REDIS_USERS) as RedisUserRole[]) {
    lines.push(
      `user ${REDIS_USERS[role]} on #${sha256Hex(passwords[role])} ${REDIS_ACL_RULES[role]}`,
    );
  }
  lines.push(`masteruser ${REDIS_USERS.replication}`, `masterauth ${passwords.replication}`);
  return lines.join('\n') + '\n';
}

/**
 * The shell lines a Redis pod runs before redis-server: write the ACL users and masterauth into
 * a file on a memory-backed emptyDir that only Redis's user can read, from the mounted Secret
 * files. The passwords pass through `printf` (a shell builtin) and `cat` of a path, so none of
 * them is ever on a command line or in the environment.
 */
export function redisAuthStartScript(secretDir: string, outFile: string): string[] {
  const file = (name: string): string => `"$(cat ${secretDir}/${name})"`;
  const lines = ['umask 077', '{', "  echo 'user default off'"];
  for (const role of Object.keys(REDIS_USERS) as RedisUserRole[]) {
    lines.push(
      `  printf 'user ${REDIS_USERS[role]} on #%s ${REDIS_ACL_RULES[role]}\\n' ${file(REDIS_SECRET_KEYS.hash(role))}`,
    );
  }
  lines.push(
    `  echo 'masteruser ${REDIS_USERS.replication}'`,
    `  printf 'masterauth %s\\n' ${file(REDIS_SECRET_KEYS.replicationPassword)}`,
    `} > ${outFile}`,
  );
  return lines;
}
