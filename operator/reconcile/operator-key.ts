import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OPERATOR_KEY_MIN_BYTES } from '../desired/redis-acl.js';

/** Where the chart mounts the operator key Secret (read by the kubelet, so no RBAC on Secrets). */
export const DEFAULT_OPERATOR_KEY_FILE = '/etc/socketfleet/operator-key/key';

/**
 * Reads the operator key: the root every operator-run Redis password is derived from (see
 * desired/redis-acl.ts). One trailing newline is not part of the key. Throws one sentence naming
 * the flag; the key itself never appears in it.
 */
export function loadOperatorKey(path: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
    throw new Error(
      `--operator-key-file: cannot read ${path} (${reason}); mount the operator key Secret there (the Helm chart does) or pass --operator-key-file with a file of at least ${OPERATOR_KEY_MIN_BYTES} random bytes.`,
    );
  }
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end--;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  const key = raw.subarray(0, end);
  if (key.length < OPERATOR_KEY_MIN_BYTES) {
    throw new Error(
      `--operator-key-file: ${path} holds ${key.length} bytes; the operator key must be at least ${OPERATOR_KEY_MIN_BYTES} random bytes.`,
    );
  }
  return key;
}

/**
 * The keys the operator tries, current first: the key file, then `previous` next to it when it
 * exists (the chart mounts every key of its Secret there). Clusters created under the previous
 * key keep their Secrets (never overwritten), so the operator logs in to their Redis with the
 * passwords that key derives until they are rotated too.
 */
export function loadOperatorKeys(path: string): Buffer[] {
  const keys = [loadOperatorKey(path)];
  const previous = join(dirname(path), 'previous');
  if (existsSync(previous)) keys.push(loadOperatorKey(previous));
  return keys;
}
