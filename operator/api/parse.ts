import type { z } from 'zod';
import { RealtimeClusterSchema, type RealtimeCluster } from './realtimecluster.js';

export type ParseResult =
  { ok: true; cluster: RealtimeCluster } | { ok: false; problems: string[] };

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

const TYPE_WORDS: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  record: 'a map',
};

/** z.int() reports a non-number input as expecting `number`; its def still says safeint. */
function isInt(issue: RawIssue): boolean {
  const def = (issue.inst as { _zod?: { def?: { format?: unknown } } } | undefined)?._zod?.def;
  return def?.format === 'safeint' || def?.format === 'int32';
}

/** Turns one zod issue into the sentence after `<path>: `; custom messages from the schema win. */
function sentence(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${TYPE_WORDS[isInt(issue) ? 'int' : issue.expected] ?? issue.expected}`;
    case 'too_small':
      return bound(issue.origin, 'min', Number(issue.minimum), issue.inclusive !== false);
    case 'too_big':
      return bound(issue.origin, 'max', Number(issue.maximum), issue.inclusive !== false);
    case 'invalid_value':
      // kubectl reads YAML 1.1, where a bare off/on/yes/no is a boolean.
      if (typeof issue.input === 'boolean' && issue.values.includes(issue.input ? 'on' : 'off')) {
        return `must be one of ${issue.values.map(String).join(', ')} (quote '${issue.input ? 'on' : 'off'}' in YAML)`;
      }
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' && 'pattern' in issue
        ? `must match ${String(issue.pattern)}`
        : `must be a valid ${issue.format}`;
    case 'invalid_union':
      return 'must be a Kubernetes quantity such as 500m, 1Gi or 2';
    case 'invalid_key':
      return 'has an invalid key';
    default:
      return undefined;
  }
}

function bound(origin: string, side: 'min' | 'max', n: number, inclusive: boolean): string {
  if (origin === 'string') {
    if (side === 'min' && n === 1) return 'must not be empty';
    return `must be ${side === 'min' ? 'at least' : 'at most'} ${n} characters`;
  }
  if (origin === 'array' || origin === 'set') {
    return `must have ${side === 'min' ? 'at least' : 'at most'} ${n} item${n === 1 ? '' : 's'}`;
  }
  const op = side === 'min' ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
  return `must be ${op} ${n}`;
}

/** `spec.tuning.sysctls["net.core.somaxconn"]`, `spec.tolerations[0]`: the path a user can find. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) {
      out += out === '' ? seg : `.${seg}`;
    } else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out === '' ? 'document' : out;
}

function problemsOf(issues: readonly Issue[]): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push(`${formatPath([...issue.path, key])}: is not a known field`);
      }
    } else if (issue.code === 'invalid_key' && issue.issues[0]) {
      problems.push(`${formatPath(issue.path)}: ${issue.issues[0].message}`);
    } else {
      problems.push(`${formatPath(issue.path)}: ${issue.message}`);
    }
  }
  return problems;
}

/**
 * Validates and defaults a RealtimeCluster the way the API server's schema would, and reports
 * every problem as `<field.path>: <sentence>` so a user can fix all of them in one pass.
 */
export function parseRealtimeCluster(input: unknown): ParseResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, problems: ['document: must be a RealtimeCluster object'] };
  }
  const result = RealtimeClusterSchema.safeParse(input, {
    reportInput: true,
    error: (issue) => sentence(issue),
  });
  if (result.success) return { ok: true, cluster: result.data };
  return { ok: false, problems: problemsOf(result.error.issues) };
}
