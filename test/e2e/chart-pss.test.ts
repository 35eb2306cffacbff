// Pod Security Standards, as the real API server's PodSecurity admission sees
// them: the chart's operator pods meet "restricted"; clusters rendered with
// tuning.mode safe-sysctls (or off) meet "restricted" too, and the default
// privileged-init mode is refused by "baseline" and "restricted" — which is
// what the README tells users.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { startCluster, type Cluster } from '../cluster/harness.js';
import { examples, examplesDir, helmTemplate, renderExample } from '../lint/tools.js';

const base = `sf-pss-${process.pid}`;
const levels = ['restricted', 'baseline'] as const;
let cluster: Cluster;

const nsFor = (level: string): string => `${base}-${level}`;

/** Server-side dry-run into a namespace; returns the PodSecurity warnings. */
async function podSecurityWarnings(manifests: string, namespace: string): Promise<string[]> {
  // Move every object into the test namespace (rendered objects may name their own).
  const docs = parseAllDocuments(manifests)
    .map((d) => d.toJS() as { kind?: string; metadata?: { namespace?: string } } | null)
    .filter((d): d is { kind: string; metadata: { namespace?: string } } => !!d?.kind);
  for (const d of docs) delete d.metadata.namespace;
  const text = docs.map((d) => stringify(d)).join('---\n');
  const r = await cluster.kubectl(['apply', '-n', namespace, '--dry-run=server', '-f', '-'], text);
  expect(r.code, r.stderr).toBe(0);
  return r.stderr.split('\n').filter((l) => l.includes('would violate PodSecurity'));
}

function tuningMode(file: string): string {
  const rtc = parse(readFileSync(join(examplesDir, file), 'utf8')) as {
    spec?: { tuning?: { mode?: string } };
  };
  return rtc.spec?.tuning?.mode ?? 'privileged-init';
}

describe('Pod Security Standards', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    for (const level of levels) {
      await cluster.kubectlOk(['create', 'namespace', nsFor(level)]);
      // enforce refuses pods; warn makes the API server report violations of
      // Deployments and StatefulSets, whose pods a dry-run never creates.
      await cluster.kubectlOk([
        'label',
        'namespace',
        nsFor(level),
        `pod-security.kubernetes.io/enforce=${level}`,
        `pod-security.kubernetes.io/warn=${level}`,
      ]);
    }
  });

  afterAll(async () => {
    if (!cluster) return;
    for (const level of levels) {
      await cluster.kubectl(['delete', 'namespace', nsFor(level), '--wait=false']);
    }
    await cluster.stop();
  });

  it('the operator chart meets "restricted"', async () => {
    const { text } = await helmTemplate({ namespace: nsFor('restricted') });
    expect(await podSecurityWarnings(text, nsFor('restricted'))).toEqual([]);
  });

  for (const example of examples) {
    const mode = tuningMode(example);
    it(`examples/${example} (tuning.mode ${mode}) against "restricted" and "baseline"`, async () => {
      const r = await renderExample(example);
      expect(r.code, r.stderr).toBe(0);
      const restricted = await podSecurityWarnings(r.stdout, nsFor('restricted'));
      const baseline = await podSecurityWarnings(r.stdout, nsFor('baseline'));
      if (mode === 'privileged-init') {
        expect(restricted.join('\n')).toContain(
          'container "sysctl" must not set securityContext.privileged=true',
        );
        expect(baseline.join('\n')).toContain(
          'container "sysctl" must not set securityContext.privileged=true',
        );
      } else {
        expect(restricted).toEqual([]);
        expect(baseline).toEqual([]);
      }
    });
  }
});
