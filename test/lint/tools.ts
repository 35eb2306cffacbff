// Helpers shared by the chart tests: run the helm binary built by
// test/cluster/build.sh, render the chart, and run kube-score (built by
// test/lint/build.sh) with the exclusions explained in kube-score.yaml.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { binDir, run, type Cluster, type ExecResult } from '../cluster/harness.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const chartDir = join(repoRoot, 'charts', 'socketfleet-operator');
export const examplesDir = join(repoRoot, 'examples');
/** Every RealtimeCluster example, so each check covers a new one without being told. */
export const examples = readdirSync(examplesDir).filter((f) => /\.ya?ml$/.test(f));

/** `socketfleet render -f examples/<file>` through the CLI, as a user runs it. */
export function renderExample(file: string): Promise<ExecResult> {
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

export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** Helm keeps its config, cache and data in a throwaway directory, never in $HOME. */
const helmHome = mkdtempSync(join(tmpdir(), 'socketfleet-helm-'));
process.once('exit', () => rmSync(helmHome, { recursive: true, force: true }));

export function helmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    ...extra,
  };
}

export function helm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ExecResult> {
  return run(join(binDir(), 'helm'), args, { env: helmEnv(env), timeoutMs: 180_000 });
}

/** Writes values to a temp file: -f keeps types exact where --set would guess them. */
export function valuesFile(values: unknown): string {
  const dir = mkdtempSync(join(helmHome, 'values-'));
  const file = join(dir, 'values.json');
  writeFileSync(file, JSON.stringify(values));
  return file;
}

export function parseDocs(text: string): KubeDoc[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeDoc | null)
    .filter((d): d is KubeDoc => d !== null && typeof d === 'object' && 'kind' in d);
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  values?: unknown;
  extraArgs?: string[];
}

/** `helm template`; throws with helm's stderr when rendering fails. */
export async function helmTemplate(opts: TemplateOptions = {}): Promise<{
  text: string;
  docs: KubeDoc[];
}> {
  const r = await helmTemplateRaw(opts);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return { text: r.stdout, docs: parseDocs(r.stdout) };
}

export function helmTemplateRaw(opts: TemplateOptions = {}): Promise<ExecResult> {
  const args = [
    'template',
    opts.release ?? 'socketfleet',
    chartDir,
    '--namespace',
    opts.namespace ?? 'socketfleet-system',
  ];
  if (opts.values !== undefined) args.push('-f', valuesFile(opts.values));
  return helm([...args, ...(opts.extraArgs ?? [])]);
}

async function buildTool(script: string): Promise<string> {
  const r = await run('bash', [join(here, script)], { teeStderr: true });
  if (r.code !== 0) throw new Error(`test/lint/${script} failed (exit ${r.code}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1]!;
}

export function buildKubeScore(): Promise<string> {
  return buildTool('build.sh');
}

/** The PromQL parser of Prometheus itself (test/lint/promql/main.go). */
export function buildPromqlCheck(): Promise<string> {
  return buildTool('build-promql.sh');
}

export interface Exclusion {
  check: string;
  why: string;
  /** render exclusions only: regex on `Kind/name`; all objects when absent. */
  objects?: string;
  /** render exclusions only: the finding must concern only these containers. */
  containers?: string[];
  /** render exclusions only: by-design, or a real problem reported to the owner of operator/desired. */
  status?: 'by-design' | 'reported';
}

export interface KubeScoreConfig {
  kubernetesVersion: string;
  ignoreContainerCpuLimit: { enabled: boolean; why: string };
  enableOptional: Exclusion[];
  ignore: Exclusion[];
  /** Extra exclusions for `socketfleet render` output (the operator's workloads). */
  renderIgnore: Exclusion[];
}

export function loadKubeScoreConfig(): KubeScoreConfig {
  return parse(readFileSync(join(here, 'kube-score.yaml'), 'utf8')) as KubeScoreConfig;
}

export interface Finding {
  object: string;
  check: string;
  grade: 'CRITICAL' | 'WARNING';
  comments: string[];
}

interface ScoredObject {
  object_name: string;
  type_meta: { kind: string };
  checks:
    | {
        check: { id: string };
        grade: number;
        skipped: boolean;
        comments: { path: string; summary: string; description: string }[] | null;
      }[]
    | null;
}

/**
 * Runs kube-score on manifests and returns every CRITICAL or WARNING finding
 * that the config does not exclude. `ignore` entries become --ignore-test
 * flags; `renderIgnore` entries are scoped to objects and containers, so an
 * exclusion for the privileged sysctl init container does not hide a
 * privileged server container.
 */
export async function kubeScore(
  bin: string,
  manifests: string,
  target: 'chart' | 'render',
): Promise<Finding[]> {
  const cfg = loadKubeScoreConfig();
  const scoped = target === 'render' ? cfg.renderIgnore : [];
  const args = ['score', '-o', 'json', '--kubernetes-version', cfg.kubernetesVersion];
  if (cfg.ignoreContainerCpuLimit.enabled) args.push('--ignore-container-cpu-limit');
  for (const e of cfg.enableOptional) args.push('--enable-optional-test', e.check);
  for (const e of cfg.ignore) args.push('--ignore-test', e.check);
  args.push('-');
  // kube-score exits 1 when it finds a critical problem; the JSON is the answer either way.
  const r = await run(bin, args, { input: manifests, timeoutMs: 60_000 });
  let objects: ScoredObject[];
  try {
    objects = JSON.parse(r.stdout) as ScoredObject[];
  } catch {
    throw new Error(`kube-score printed no JSON (exit ${r.code}): ${r.stderr.trim()}`);
  }
  const findings: Finding[] = [];
  for (const o of objects ?? []) {
    for (const c of o.checks ?? []) {
      if (c.skipped || c.grade > 5) continue;
      const object = `${o.type_meta.kind}/${o.object_name}`;
      const paths = (c.comments ?? []).map((m) => m.path);
      const excused = scoped.some(
        (e) =>
          e.check === c.check.id &&
          (e.objects === undefined || new RegExp(`^(${e.objects})$`).test(object)) &&
          (e.containers === undefined || paths.every((p) => e.containers!.includes(p))),
      );
      if (excused) continue;
      findings.push({
        object,
        check: c.check.id,
        grade: c.grade <= 1 ? 'CRITICAL' : 'WARNING',
        comments: (c.comments ?? []).map((m) => `${m.path}: ${m.summary}`),
      });
    }
  }
  return findings.sort((a, b) => `${a.object}${a.check}`.localeCompare(`${b.object}${b.check}`));
}

/**
 * kwok's fake nodes report no ephemeral-storage capacity, so any pod that
 * requests ephemeral storage (the operator's does, as real nodes always have
 * some) stays Pending. Give each fake node the capacity a real one reports.
 */
export async function ensureNodeEphemeralStorage(cluster: Cluster): Promise<void> {
  const nodes = JSON.parse(await cluster.kubectlOk(['get', 'nodes', '-o', 'json'])) as {
    items: { metadata: { name: string }; status: { allocatable?: Record<string, string> } }[];
  };
  for (const node of nodes.items) {
    if (node.status.allocatable?.['ephemeral-storage']) continue;
    await cluster.kubectlOk([
      'patch',
      'node',
      node.metadata.name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          capacity: { 'ephemeral-storage': '100Gi' },
          allocatable: { 'ephemeral-storage': '100Gi' },
        },
      }),
    ]);
  }
}
