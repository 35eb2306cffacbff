import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { redisClusterNodes } from '../../operator/desired/redis.js';
import { buildServerConfig } from '../../operator/desired/server-config.js';
import { ServerConfigSchema } from '../../server-image/src/config.js';

const examples = resolve(import.meta.dirname, '..', '..', 'examples');

// The operator writes server.json; the server parses it with its own schema. Both sides must agree
// for every example the README shows, field for field.
describe('operator-to-server config contract', () => {
  for (const name of readdirSync(examples).filter((f) => f.endsWith('.yaml'))) {
    it(`the server parses what the operator writes for examples/${name}`, () => {
      const parsed = parseRealtimeCluster(parse(readFileSync(join(examples, name), 'utf8')));
      if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
      const written = buildServerConfig(parsed.cluster, redisClusterNodes(parsed.cluster));
      const read = ServerConfigSchema.safeParse(JSON.parse(JSON.stringify(written)));
      expect(read.success ? [] : read.error.issues).toEqual([]);
      if (!read.success) return;
      const s = parsed.cluster.spec.socketio;
      expect(read.data).toMatchObject({
        parser: s.parser,
        pingIntervalMs: s.pingIntervalMs,
        pingTimeoutMs: s.pingTimeoutMs,
        maxPayloadBytes: s.maxPayloadBytes,
        drainSeconds: s.drainSeconds,
      });
      expect(read.data.redis.nodes.length).toBeGreaterThanOrEqual(parsed.cluster.spec.redis.shards);
    });
  }
});
