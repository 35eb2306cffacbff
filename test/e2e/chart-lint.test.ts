// Offline manifest check: kube-score (built from the Go module proxy by
// test/lint/build.sh) on the rendered chart and on `socketfleet render` of
// every example. Exclusions live in test/lint/kube-score.yaml, each with the
// reason it does not apply; anything else kube-score flags fails the test.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { run } from '../cluster/harness.js';
import {
  buildKubeScore,
  helmTemplate,
  kubeScore,
  loadKubeScoreConfig,
  repoRoot,
} from '../lint/tools.js';

let kubeScoreBin: string;
const examplesDir = join(repoRoot, 'examples');
const examples = readdirSync(examplesDir).filter((f) => /\.ya?ml$/.test(f));

function renderExample(file: string): ReturnType<typeof run> {
  return run(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'operator', 'cli', 'main.ts'),
      'render',
      '-f',
      join(examplesDir, file),
    ],
    { timeoutMs: 120_000 },
  );
}

describe('manifest check (kube-score)', () => {
  beforeAll(async () => {
    kubeScoreBin = await buildKubeScore();
    // helm comes with the test control plane binaries; a warm cache costs seconds.
    const r = await run('bash', [join(repoRoot, 'test', 'cluster', 'build.sh'), 'helm'], {
      teeStderr: true,
    });
    if (r.code !== 0) throw new Error(`test/cluster/build.sh helm failed (exit ${r.code})`);
  }, 1_800_000);

  it('explains every exclusion and names only checks kube-score has', async () => {
    const cfg = loadKubeScoreConfig();
    const list = await run(kubeScoreBin, ['list']);
    expect(list.code, list.stderr).toBe(0);
    const known = new Set(list.stdout.split('\n').map((l) => l.split(',')[0]!.trim()));
    for (const e of [...cfg.enableOptional, ...cfg.ignore, ...cfg.renderIgnore]) {
      expect(known, e.check).toContain(e.check);
      expect(e.why.trim().length, `${e.check} needs a reason`).toBeGreaterThan(20);
    }
    for (const e of cfg.renderIgnore) {
      expect(['by-design', 'reported'], `${e.check} needs a status`).toContain(e.status);
      expect(e.objects, `${e.check} must name the objects it excuses`).toBeTruthy();
    }
    expect(cfg.ignoreContainerCpuLimit.why.trim().length).toBeGreaterThan(20);
  });

  it('finds nothing in the chart with default values', async () => {
    const { text } = await helmTemplate();
    expect(await kubeScore(kubeScoreBin, text, 'chart')).toEqual([]);
  });

  it('finds nothing in the chart with every option on', async () => {
    const { text } = await helmTemplate({
      values: {
        watchNamespaces: ['team-a', 'team-b'],
        metrics: { serviceMonitor: { enabled: true } },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    });
    expect(await kubeScore(kubeScoreBin, text, 'chart')).toEqual([]);
  });

  it('still catches a real problem (the check is not a no-op)', async () => {
    const { text } = await helmTemplate({
      values: { securityContext: { readOnlyRootFilesystem: false }, replicaCount: 1 },
    });
    const findings = await kubeScore(kubeScoreBin, text, 'chart');
    expect(findings.map((f) => f.check)).toEqual(
      expect.arrayContaining([
        'container-security-context-readonlyrootfilesystem',
        'deployment-replicas',
      ]),
    );
  });

  it('has examples to render', () => {
    expect(examples.length).toBeGreaterThan(0);
  });

  it('scopes render exclusions: a privileged server container is still reported', async () => {
    const r = await renderExample('minimal.yaml');
    expect(r.code, r.stderr).toBe(0);
    interface Workload {
      kind: string;
      metadata: { name: string };
      spec: { template: { spec: { containers: { name: string; securityContext?: object }[] } } };
    }
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Workload | null);
    const server = docs.find(
      (d) => d?.kind === 'Deployment' && d.metadata.name.endsWith('-server'),
    );
    const main = server?.spec.template.spec.containers.find((c) => c.name === 'server');
    expect(main).toBeTruthy();
    main!.securityContext = { ...main!.securityContext, privileged: true };
    const text = docs.map((d) => stringify(d)).join('---\n');
    const findings = await kubeScore(kubeScoreBin, text, 'render');
    expect(findings).toContainEqual(
      expect.objectContaining({ check: 'container-security-context-privileged' }),
    );
  });

  for (const example of examples) {
    it(`finds nothing unexplained in \`socketfleet render -f examples/${example}\``, async () => {
      const r = await renderExample(example);
      expect(r.code, r.stderr).toBe(0);
      expect(await kubeScore(kubeScoreBin, r.stdout, 'render')).toEqual([]);
    });
  }
});
