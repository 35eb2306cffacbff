import { createHash } from 'node:crypto';

/** Short content hash for pod-template annotations: identical input gives identical rollouts. */
export function contentHash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}
