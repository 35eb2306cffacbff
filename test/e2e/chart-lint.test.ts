// Offline manifest checks: kube-score (built from the Go module proxy by
// test/lint/build.sh) on the rendered chart and on `socketfleet render` of
// every example. Exclusions live in test/lint/kube-score.yaml, each with the
// reason it does not apply; anything else kube-score flags fails the test.
// The chart's alert rules and dashboard queries go through the PromQL parser
// of Prometheus itself (test/lint/promql, built by test/lint/build-promql.sh).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { run } from '../cluster/harness.js';
import {
  buildKubeScore,
  buildPromqlCheck,
  examples,
  helmTemplate,
  kubeScore,
  loadKubeScoreConfig,
  renderExample,
  repoRoot,
} from '../lint/tools.js';

let kubeScoreBin: string;
let promqlCheckBin: string;

describe('offline manifest checks (kube-score, PromQL parser)', () => {
  beforeAll(async () => {
    kubeScoreBin = await buildKubeScore();
    promqlCheckBin = await buildPromqlCheck();
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

  it('alert rules and dashboard queries parse as PromQL and use metrics the code exports', async () => {
    const { docs } = await helmTemplate({
      values: { prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } },
    });
    const rule = docs.find((d) => d.kind === 'PrometheusRule') as unknown as {
      spec: { groups: { rules: { alert: string; expr: string }[] }[] };
    };
    const cm = docs.find((d) => d.kind === 'ConfigMap') as unknown as {
      data: Record<string, string>;
    };
    const dashboard = JSON.parse(cm.data['socketfleet.json']!) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const queries = [
      ...rule.spec.groups.flatMap((g) => g.rules.map((r) => ({ name: r.alert, expr: r.expr }))),
      ...dashboard.panels.flatMap((p) =>
        (p.targets ?? []).map((t) => ({
          name: `panel "${p.title}"`,
          // Grafana fills these in before Prometheus sees the query.
          expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*'),
        })),
      ),
    ];
    expect(queries.length).toBeGreaterThan(10);
    const checked = await run(promqlCheckBin, [], { input: JSON.stringify(queries) });
    expect(checked.stdout + checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    const broken = await run(promqlCheckBin, [], {
      input: JSON.stringify([{ name: 'broken', expr: 'sum by (x (up)' }]),
    });
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('broken: ');

    // Every socketfleet_ metric a query names is registered by the operator, the server or the
    // gateway's sync sidecar.
    const sources = [
      readFileSync(join(repoRoot, 'operator', 'reconcile', 'metrics.ts'), 'utf8'),
      readFileSync(join(repoRoot, 'server-image', 'src', 'metrics.ts'), 'utf8'),
      readFileSync(join(repoRoot, 'operator', 'gateway', 'reload-status.ts'), 'utf8'),
    ].join('\n');
    const named = new Set(
      queries
        .flatMap((q) => q.expr.match(/socketfleet_[a-z_]+/g) ?? [])
        .map((m) => m.replace(/_bucket$/, '')),
    );
    expect([...named].filter((m) => !sources.includes(`'${m}'`))).toEqual([]);
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
