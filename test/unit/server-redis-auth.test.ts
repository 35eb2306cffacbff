import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRedisCredentials } from '../../server-image/src/redis-auth.js';

const dir = mkdtempSync(join(tmpdir(), 'socketfleet-redis-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe('server Redis login from the environment and mounted files', () => {
  it('reads the ACL user and the password file (a trailing newline is not part of it)', () => {
    const r = loadRedisCredentials({
      REDIS_USERNAME: 'socketfleet-server',
      REDIS_PASSWORD_FILE: file('pw', 's3cret\n'),
      REDIS_PASSWORD: 'ignored-when-a-file-is-set',
    });
    expect(r).toEqual({
      ok: true,
      credentials: { username: 'socketfleet-server', password: 's3cret', tls: undefined },
    });
  });

  it('keeps REDIS_PASSWORD for a plain run, and no auth when nothing is set', () => {
    expect(loadRedisCredentials({ REDIS_PASSWORD: 'pw' })).toEqual({
      ok: true,
      credentials: { username: undefined, password: 'pw', tls: undefined },
    });
    expect(loadRedisCredentials({})).toEqual({
      ok: true,
      credentials: { username: undefined, password: undefined, tls: undefined },
    });
  });

  it('reads the TLS CA, client certificate and key from files, and the server name', () => {
    const r = loadRedisCredentials({
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: file('ca.crt', 'CA'),
      REDIS_TLS_CERT_FILE: file('tls.crt', 'CERT'),
      REDIS_TLS_KEY_FILE: file('tls.key', 'KEY'),
      REDIS_TLS_SERVER_NAME: 'redis.example',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const tls = r.credentials.tls!;
    expect(tls.ca).toEqual(Buffer.from('CA'));
    expect(tls.cert).toEqual(Buffer.from('CERT'));
    expect(tls.key).toEqual(Buffer.from('KEY'));
    expect(tls.servername).toBe('redis.example');
    expect(loadRedisCredentials({ REDIS_TLS: 'false' })).toMatchObject({
      ok: true,
      credentials: { tls: undefined },
    });
  });

  it('refuses a missing file, half a client certificate, a user without a password, in one sentence each', () => {
    const missing = join(dir, 'nope');
    expect(loadRedisCredentials({ REDIS_PASSWORD_FILE: missing })).toEqual({
      ok: false,
      problems: [
        `REDIS_PASSWORD_FILE: cannot read ${missing} (ENOENT); mount the file there or unset the variable.`,
      ],
    });
    expect(
      loadRedisCredentials({ REDIS_TLS: 'true', REDIS_TLS_CERT_FILE: file('c2', 'CERT') }),
    ).toEqual({
      ok: false,
      problems: [
        'REDIS_TLS_CERT_FILE: a client certificate needs its key too; set both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE, or neither.',
      ],
    });
    expect(loadRedisCredentials({ REDIS_USERNAME: 'u' })).toEqual({
      ok: false,
      problems: [
        'REDIS_USERNAME: a Redis user needs a password; set REDIS_PASSWORD_FILE (or REDIS_PASSWORD).',
      ],
    });
    expect(loadRedisCredentials({ REDIS_TLS: 'yes' })).toEqual({
      ok: false,
      problems: ['REDIS_TLS: must be true or false, not "yes".'],
    });
  });
});
