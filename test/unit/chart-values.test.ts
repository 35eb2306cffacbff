// Static checks of the Helm chart that need no helm binary: values.yaml and
// values.schema.json describe the same keys, the chart's appVersion is the
// package version (so the default image runs this code), and every RBAC rule
// is explicit (no wildcards) and explained by a comment.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KINDS, OWNED_KINDS } from '../../operator/reconcile/kinds.js';

const chartDir = join(import.meta.dirname, '..', '..', 'charts', 'socketfleet-operator');

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  required?: string[];
}

function readYaml(file: string): unknown {
  return parse(readFileSync(join(chartDir, file), 'utf8'));
}

/** Dotted paths of values.yaml, stopping where the schema allows free-form content. */
function valuePaths(value: unknown, schema: SchemaNode, prefix: string, out: string[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push(path);
    const sub = schema.properties?.[key];
    if (sub?.properties) valuePaths(child, sub, path, out);
  }
}

function schemaPaths(schema: SchemaNode, prefix: string, out: string[]): void {
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push(path);
    schemaPaths(sub, path, out);
  }
}

/** The YAML rule lists inside the `define` blocks of _rbac-rules.tpl, with their comments. */
function ruleBlocks(): { name: string; text: string }[] {
  const tpl = readFileSync(join(chartDir, 'templates', '_rbac-rules.tpl'), 'utf8');
  const blocks: { name: string; text: string }[] = [];
  const re = /\{\{- define "([^"]+)" -\}\}\n([\s\S]*?)\{\{- end \}\}/g;
  for (const m of tpl.matchAll(re)) blocks.push({ name: m[1]!, text: m[2]! });
  return blocks;
}

describe('chart values', () => {
  const schema = JSON.parse(
    readFileSync(join(chartDir, 'values.schema.json'), 'utf8'),
  ) as SchemaNode;
  const values = readYaml('values.yaml');

  it('every key of values.yaml is declared in values.schema.json', () => {
    const paths: string[] = [];
    valuePaths(values, schema, '', paths);
    const missing = paths.filter((p) => {
      let node: SchemaNode | undefined = schema;
      for (const part of p.split('.')) {
        if (!node?.properties) return false; // free-form object: anything goes
        node = node.properties[part];
        if (!node) return true;
      }
      return false;
    });
    expect(missing).toEqual([]);
  });

  it('every key of the schema has a default in values.yaml', () => {
    const declared: string[] = [];
    schemaPaths(schema, '', declared);
    const present: string[] = [];
    valuePaths(values, schema, '', present);
    expect(declared.filter((p) => p !== 'global' && !present.includes(p))).toEqual([]);
  });

  it('rejects unknown keys at every level the chart reads', () => {
    const open: string[] = [];
    const walk = (node: SchemaNode, path: string): void => {
      if (!node.properties) return;
      if (node.additionalProperties !== false) open.push(path || '<root>');
      for (const [k, sub] of Object.entries(node.properties)) walk(sub, path ? `${path}.${k}` : k);
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('ships exactly the generated CRDs of crds/ (npm run gen copies them)', () => {
    const root = join(import.meta.dirname, '..', '..', 'crds');
    const yamls = (dir: string): string[] =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.yaml'))
        .sort();
    const ours = yamls(join(chartDir, 'crds'));
    expect(ours).toEqual(yamls(root));
    expect(ours.length).toBeGreaterThan(0);
    for (const f of ours) {
      expect(readFileSync(join(chartDir, 'crds', f), 'utf8'), `${f} drifted: run npm run gen`).toBe(
        readFileSync(join(root, f), 'utf8'),
      );
    }
  });

  it('defaults the image to the version of this package', () => {
    const chart = readYaml('Chart.yaml') as { appVersion: string; version: string };
    const pkg = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'),
    ) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
    expect((values as { image: { tag: string } }).image.tag).toBe('');
  });
});

describe('chart RBAC rules', () => {
  const blocks = ruleBlocks();

  it('defines the watched-namespace rules and the leader-election rules', () => {
    expect(blocks.map((b) => b.name)).toEqual([
      'socketfleet-operator.rules',
      'socketfleet-operator.leaseRules',
    ]);
  });

  for (const block of blocks) {
    it(`${block.name}: no wildcards, every rule explained by a comment`, () => {
      const rules = parse(block.text) as {
        apiGroups: string[];
        resources: string[];
        verbs: string[];
      }[];
      expect(rules.length).toBeGreaterThan(0);
      for (const rule of rules) {
        for (const v of [...rule.apiGroups, ...rule.resources, ...rule.verbs]) {
          expect(v).not.toContain('*');
        }
        expect(rule.verbs.length).toBeGreaterThan(0);
      }
      const lines = block.text.split('\n');
      lines.forEach((line, i) => {
        if (line.startsWith('- apiGroups:')) {
          const explained = (lines[i - 1] ?? '').startsWith('#');
          expect(explained, `rule at line ${i + 1} of ${block.name} needs a comment`).toBe(true);
        }
      });
    });
  }

  it('covers every kind the operator owns (fast warning; the e2e proof is chart-rbac)', () => {
    const rules = blocks.flatMap(
      (b) => parse(b.text) as { apiGroups: string[]; resources: string[]; verbs: string[] }[],
    );
    const verbsFor = (apiVersion: string, plural: string): string[] => {
      const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
      return rules
        .filter((r) => r.apiGroups.includes(group) && r.resources.includes(plural))
        .flatMap((r) => r.verbs);
    };
    const missing: string[] = [];
    for (const kind of OWNED_KINDS) {
      const info = KINDS.find((k) => k.kind === kind);
      expect(info, kind).toBeDefined();
      // Cached (list, watch) and server-side applied (create, patch).
      for (const verb of ['list', 'watch', 'create']) {
        if (!verbsFor(info!.apiVersion, info!.plural).includes(verb))
          missing.push(`${verb} ${info!.plural}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('grants only create on Secrets: no get, list or watch (Redis passwords are derived from the mounted operator key)', () => {
    const rules = blocks.flatMap(
      (b) => parse(b.text) as { apiGroups: string[]; resources: string[]; verbs: string[] }[],
    );
    const onSecrets = rules.filter(
      (r) => r.apiGroups.includes('') && r.resources.includes('secrets'),
    );
    expect(onSecrets.flatMap((r) => r.verbs)).toEqual(['create']);
  });

  it('grants Leases only through the leader-election Role', () => {
    const main = blocks.find((b) => b.name === 'socketfleet-operator.rules')!;
    expect(main.text).not.toContain('leases');
  });
});
