import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { parseRealtimeCluster } from '../api/parse.js';
import { KIND } from '../api/realtimecluster.js';
import { buildDesired } from '../desired/index.js';
import { resourceNames } from '../desired/names.js';
import { toYaml } from './yaml-out.js';

export const RENDER_USAGE =
  'usage: socketfleet render -f FILE [-n NAMESPACE]  (FILE may be - for stdin)';

interface RenderArgs {
  file: string;
  namespace?: string;
}

function parseArgs(argv: string[]): RenderArgs | string {
  let file: string | undefined;
  let namespace: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-f' || a === '--file') file = argv[++i];
    else if (a === '-n' || a === '--namespace') namespace = argv[++i];
    else return `render: unknown argument ${a}; ${RENDER_USAGE}`;
  }
  if (!file) return `render: missing -f FILE; ${RENDER_USAGE}`;
  return namespace === undefined ? { file } : { file, namespace };
}

export interface RenderOutput {
  /** The YAML stream, when every RealtimeCluster in the input is valid. */
  yaml?: string;
  /** One line per problem, naming the field path. */
  problems: string[];
  warnings: string[];
}

/**
 * Renders every RealtimeCluster of a YAML stream, as the operator would create it. The gateway's
 * upstreams are not among them: its sync sidecar renders those in the pod.
 * Documents of other kinds are skipped, so a whole GitOps folder works.
 */
export function renderText(text: string, namespace?: string): RenderOutput {
  // YAML 1.1 like kubectl, so a file renders here exactly when the API server would accept it.
  const docs = parseAllDocuments(text, { version: '1.1' });
  const problems: string[] = [];
  const warnings: string[] = [];
  const chunks: string[] = [];
  const multi = docs.length > 1;
  let clusters = 0;

  docs.forEach((doc, index) => {
    const where = multi ? `document ${index + 1}: ` : '';
    if (doc.errors.length > 0) {
      for (const e of doc.errors)
        problems.push(`${where}invalid YAML: ${e.message.split('\n')[0]}`);
      return;
    }
    const raw: unknown = doc.toJS();
    if (raw === null || raw === undefined) return;
    if (
      typeof raw === 'object' &&
      !Array.isArray(raw) &&
      (raw as { kind?: unknown }).kind !== KIND
    ) {
      return;
    }
    clusters++;
    const input =
      namespace && typeof raw === 'object' && raw !== null && 'metadata' in raw
        ? withNamespace(raw, namespace)
        : raw;
    const parsed = parseRealtimeCluster(input);
    if (!parsed.ok) {
      for (const p of parsed.problems) problems.push(`${where}${p}`);
      return;
    }
    const cluster = parsed.cluster;
    const desired = buildDesired(cluster);
    const id = cluster.metadata.namespace
      ? `${cluster.metadata.namespace}/${cluster.metadata.name}`
      : cluster.metadata.name;
    const head = [`# RealtimeCluster ${id}: ${desired.objects.length} objects`];
    if (cluster.spec.redis.auth.enabled) {
      head.push(
        `# Secret ${resourceNames(cluster.metadata.name).redisAuthSecret} (Redis ACL passwords and their hashes) is not rendered: the operator creates it once with passwords derived from its key.`,
      );
    }
    if (cluster.spec.auth.mode === 'jwt' && cluster.spec.auth.secretName === undefined) {
      head.push(
        `# Secret ${resourceNames(cluster.metadata.name).clientAuthSecret} (key: jwt-key) is not rendered: the operator creates it once with a random key for client tokens.`,
      );
    }
    for (const w of desired.warnings) {
      head.push(`# warning: ${w}`);
      warnings.push(`${id}: ${w}`);
    }
    chunks.push(`${head.join('\n')}\n`);
    for (const obj of desired.objects) chunks.push(`---\n${toYaml(obj)}`);
  });

  if (problems.length === 0 && clusters === 0) {
    problems.push(`document: no ${KIND} found; expected kind: ${KIND}`);
  }
  if (problems.length > 0) return { problems, warnings };
  return { yaml: chunks.join(''), problems, warnings };
}

function withNamespace(raw: { metadata?: unknown }, namespace: string): unknown {
  const meta = raw.metadata;
  if (typeof meta !== 'object' || meta === null || 'namespace' in meta) return raw;
  return { ...raw, metadata: { ...meta, namespace } };
}

function readInput(file: string): string {
  return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n`);
    return 2;
  }
  let text: string;
  try {
    text = readInput(args.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    process.stderr.write(`render: cannot read ${args.file} (${code})\n`);
    return Promise.resolve(1);
  }
  const out = renderText(text, args.namespace);
  if (out.yaml === undefined) {
    for (const p of out.problems) process.stderr.write(`${p}\n`);
    return 1;
  }
  process.stdout.write(out.yaml);
  for (const w of out.warnings) process.stderr.write(`warning: ${w}\n`);
  return 0;
}
