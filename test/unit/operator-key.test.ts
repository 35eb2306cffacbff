import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveRedisPasswords, sha256Hex } from '../../operator/desired/redis-acl.js';
import { loadOperatorKey, loadOperatorKeys } from '../../operator/reconcile/operator-key.js';

const dir = mkdtempSync(join(tmpdir(), 'socketfleet-operator-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('operator key and derived Redis passwords', () => {
  it('reads the key file without its trailing newline, and refuses a short or missing one', () => {
    const ok = join(dir, 'key');
    writeFileSync(ok, 'k'.repeat(40) + '\n');
    expect(loadOperatorKey(ok).toString()).toBe('k'.repeat(40));
    const short = join(dir, 'short');
    writeFileSync(short, 'tiny\n');
    expect(() => loadOperatorKey(short)).toThrow(
      `--operator-key-file: ${short} holds 4 bytes; the operator key must be at least 32 random bytes.`,
    );
    const missing = join(dir, 'missing');
    expect(() => loadOperatorKey(missing)).toThrow(
      `--operator-key-file: cannot read ${missing} (ENOENT); mount the operator key Secret there (the Helm chart does) or pass --operator-key-file with a file of at least 32 random bytes.`,
    );
  });

  it('adds the previous key (a file named previous next to the key) after the current one', () => {
    const sub = mkdtempSync(join(dir, 'rotation-'));
    writeFileSync(join(sub, 'key'), 'n'.repeat(32));
    expect(loadOperatorKeys(join(sub, 'key')).map(String)).toEqual(['n'.repeat(32)]);
    writeFileSync(join(sub, 'previous'), 'o'.repeat(32) + '\n');
    expect(loadOperatorKeys(join(sub, 'key')).map(String)).toEqual([
      'n'.repeat(32),
      'o'.repeat(32),
    ]);
  });

  it('derives the same passwords again, distinct per user, per cluster UID and per key', () => {
    const key = Buffer.alloc(32, 1);
    const a = deriveRedisPasswords(key, 'uid-a');
    expect(deriveRedisPasswords(Buffer.alloc(32, 1), 'uid-a')).toEqual(a);
    expect(new Set(Object.values(a)).size).toBe(4);
    const b = deriveRedisPasswords(key, 'uid-b');
    const other = deriveRedisPasswords(Buffer.alloc(32, 2), 'uid-a');
    for (const role of ['server', 'operator', 'replication', 'exporter'] as const) {
      expect(b[role]).not.toBe(a[role]);
      expect(other[role]).not.toBe(a[role]);
      // 256 bits, in characters that need no quoting in redis.conf or a shell.
      expect(a[role]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
    expect(sha256Hex('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
