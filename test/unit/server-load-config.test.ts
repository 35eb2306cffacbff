import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server-image/src/load-config.js';

const dir = mkdtempSync(join(tmpdir(), 'socketfleet-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe('server config loading', () => {
  it('reads the file named by SOCKETFLEET_CONFIG, applies defaults and takes the password from REDIS_PASSWORD', () => {
    const path = file(
      'ok.json',
      JSON.stringify({ redis: { nodes: [{ host: 'r0' }, { host: 'r1', port: 7000 }] } }),
    );
    const r = loadConfig({ SOCKETFLEET_CONFIG: path, REDIS_PASSWORD: 's3cret' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.redisPassword).toBe('s3cret');
    expect(r.config).toMatchObject({
      port: 3000,
      opsPort: 9090,
      parser: 'msgpack',
      pingIntervalMs: 25000,
      pingTimeoutMs: 20000,
      redis: {
        nodes: [
          { host: 'r0', port: 6379 },
          { host: 'r1', port: 7000 },
        ],
      },
    });
  });

  it('reports one line per problem with its path', () => {
    const path = file(
      'bad.json',
      JSON.stringify({ port: 0, parser: 'xml', bogus: 1, redis: { nodes: [] } }),
    );
    const r = loadConfig({ SOCKETFLEET_CONFIG: path });
    expect(r).toEqual({
      ok: false,
      problems: [
        'port: must be at least 1.',
        'parser: must be one of "msgpack", "json".',
        'redis.nodes: must have at least 1 item(s).',
        'bogus: is not a known field; remove it.',
      ],
    });
  });

  it('names a missing file and invalid JSON in one sentence each', () => {
    const missing = join(dir, 'nope.json');
    expect(loadConfig({ SOCKETFLEET_CONFIG: missing })).toEqual({
      ok: false,
      problems: [
        `SOCKETFLEET_CONFIG: cannot read ${missing} (ENOENT); mount the config file there or unset the variable.`,
      ],
    });
    const broken = file('broken.json', '{ "port": ');
    const r = loadConfig({ SOCKETFLEET_CONFIG: broken });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.problems[0]).toMatch(new RegExp(`^\\(file\\): ${broken} is not valid JSON \\(`));
  });

  it('builds the config from SOCKETFLEET_* variables for a plain run', () => {
    const r = loadConfig({
      SOCKETFLEET_REDIS_NODES: '127.0.0.1:6380, redis-b',
      SOCKETFLEET_PORT: '4000',
      SOCKETFLEET_PARSER: 'json',
    });
    expect(r.ok && r.config).toMatchObject({
      port: 4000,
      parser: 'json',
      redis: {
        nodes: [
          { host: '127.0.0.1', port: 6380 },
          { host: 'redis-b', port: 6379 },
        ],
      },
    });
    expect(loadConfig({})).toEqual({
      ok: false,
      problems: [
        'redis.nodes: set SOCKETFLEET_CONFIG to a config file or SOCKETFLEET_REDIS_NODES to a comma-separated list of Redis Cluster nodes as host:port.',
      ],
    });
    expect(loadConfig({ SOCKETFLEET_REDIS_NODES: 'r:1', SOCKETFLEET_PORT: 'x' })).toEqual({
      ok: false,
      problems: ['port: SOCKETFLEET_PORT must be an integer, got "x".'],
    });
  });
});
