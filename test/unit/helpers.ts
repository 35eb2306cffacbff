import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';

export const REPO = join(import.meta.dirname, '..', '..');
export const EXAMPLES = ['minimal', 'full', 'local', 'room-affinity', 'secure-gateway'] as const;

export function exampleRaw(name: string): unknown {
  return parse(readFileSync(join(REPO, 'examples', `${name}.yaml`), 'utf8'));
}

export function exampleCluster(name: string): RealtimeCluster {
  return clusterFrom(exampleRaw(name));
}

/** A parsed cluster from a partial manifest; throws with the problems so a test shows them. */
export function clusterFrom(raw: unknown): RealtimeCluster {
  const r = parseRealtimeCluster(raw);
  if (!r.ok) throw new Error(`invalid test cluster:\n${r.problems.join('\n')}`);
  return r.cluster;
}

export function manifest(
  spec: Record<string, unknown> = {},
  name = 'demo',
): Record<string, unknown> {
  return {
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name },
    spec,
  };
}
