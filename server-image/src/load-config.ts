import { CLIENT_AUTH_KEY_ENV } from './client-auth.js';
import { existsSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import {
  CONFIG_PATH_ENV,
  DEFAULT_CONFIG_PATH,
  ServerConfigSchema,
  type ServerConfig,
} from './config.js';
import { loadRedisCredentials, type RedisCredentials } from './redis-auth.js';

export type LoadedConfig =
  | {
      ok: true;
      config: ServerConfig;
      redisPassword: string | undefined;
      /** The whole Redis login: ACL user, password (from REDIS_PASSWORD_FILE) and TLS. */
      redis: RedisCredentials;
      /** The client-auth key (SOCKETFLEET_CLIENT_AUTH_KEY), when set. */
      clientAuthKey?: string | undefined;
      source: string;
    }
  | { ok: false; problems: string[] };

/** Exit code for a configuration error (sysexits EX_CONFIG), so a crash loop is recognisable. */
export const EXIT_CONFIG = 78;

/** Variables of a plain run without a config file (a laptop, a compose file). */
export const ENV_NODES = 'SOCKETFLEET_REDIS_NODES';
const ENV_NUMBERS: Record<string, string> = {
  SOCKETFLEET_PORT: 'port',
  SOCKETFLEET_OPS_PORT: 'opsPort',
  SOCKETFLEET_EVENTS_PER_SECOND: 'eventsPerSecond',
  SOCKETFLEET_DRAIN_SECONDS: 'drainSeconds',
  SOCKETFLEET_TRAFFIC_LOG_SECONDS: 'trafficLogSeconds',
};
const ENV_STRINGS: Record<string, string> = {
  SOCKETFLEET_PARSER: 'parser',
  SOCKETFLEET_LOG_LEVEL: 'logLevel',
};

/**
 * Reads the config file named by $SOCKETFLEET_CONFIG (or the default mount path when it exists),
 * otherwise builds the config from SOCKETFLEET_* variables. Never throws: every problem becomes
 * one `<path>: <sentence>` line.
 */
export function loadConfig(env: NodeJS.ProcessEnv): LoadedConfig {
  const creds = loadRedisCredentials(env);
  if (!creds.ok) return creds;
  const redisPassword = creds.credentials.password;
  const explicitPath = env[CONFIG_PATH_ENV];
  const path =
    explicitPath !== undefined && explicitPath !== ''
      ? explicitPath
      : existsSync(DEFAULT_CONFIG_PATH)
        ? DEFAULT_CONFIG_PATH
        : undefined;

  let raw: unknown;
  let source: string;
  if (path !== undefined) {
    source = path;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      return {
        ok: false,
        problems: [
          `${CONFIG_PATH_ENV}: cannot read ${path} (${reason}); mount the config file there or unset the variable.`,
        ],
      };
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      return { ok: false, problems: [`(file): ${path} is not valid JSON (${detail}).`] };
    }
  } else {
    source = 'environment';
    const built = configFromEnv(env);
    if (!built.ok) return built;
    raw = built.raw;
  }

  const parsed = ServerConfigSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.flatMap(describeIssue) };
  const clientAuthKey = env[CLIENT_AUTH_KEY_ENV] === '' ? undefined : env[CLIENT_AUTH_KEY_ENV];
  if (parsed.data.clientAuth === 'jwt' && clientAuthKey === undefined) {
    return {
      ok: false,
      problems: [
        `clientAuth: is jwt but ${CLIENT_AUTH_KEY_ENV} is empty; set it from the key Secret, or set clientAuth to none to let anyone connect.`,
      ],
    };
  }
  return {
    ok: true,
    config: parsed.data,
    redisPassword,
    redis: creds.credentials,
    clientAuthKey,
    source,
  };
}

type Issue = z.core.$ZodIssue;

/** One `<path>: <sentence>` per problem, worded for the person who wrote the file. */
function describeIssue(issue: Issue): string[] {
  const where = (path: PropertyKey[]): string =>
    path.length === 0 ? '(root)' : path.map(String).join('.');
  const at = where(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map(
        (key) => `${where([...issue.path, key])}: is not a known field; remove it.`,
      );
    case 'invalid_type':
      return [
        issue.input === undefined
          ? `${at}: is required.`
          : `${at}: must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}.`,
      ];
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'at least' : 'at most';
      if (issue.origin === 'array') return [`${at}: must have ${word} ${Number(bound)} item(s).`];
      if (issue.origin === 'string')
        return [`${at}: must have ${word} ${Number(bound)} character(s).`];
      return [`${at}: must be ${word} ${Number(bound)}.`];
    }
    case 'invalid_value':
      return [`${at}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}.`];
    default:
      return [`${at}: ${issue.message}.`];
  }
}

function configFromEnv(
  env: NodeJS.ProcessEnv,
): { ok: true; raw: unknown } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  const nodesText = env[ENV_NODES];
  if (nodesText === undefined || nodesText.trim() === '') {
    problems.push(
      `redis.nodes: set ${CONFIG_PATH_ENV} to a config file or ${ENV_NODES} to a comma-separated list of Redis Cluster nodes as host:port.`,
    );
  } else {
    raw.redis = {
      nodes: nodesText.split(',').map((entry) => {
        const item = entry.trim();
        const colon = item.lastIndexOf(':');
        if (colon <= 0) return { host: item };
        return { host: item.slice(0, colon), port: Number(item.slice(colon + 1)) };
      }),
    };
  }
  for (const [name, key] of Object.entries(ENV_NUMBERS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const n = Number(value);
    if (!Number.isInteger(n)) problems.push(`${key}: ${name} must be an integer, got "${value}".`);
    else raw[key] = n;
  }
  for (const [name, key] of Object.entries(ENV_STRINGS)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, raw };
}
