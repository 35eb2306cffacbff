import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { buildCrd, toStructural } from '../../operator/api/crd.js';
import { generatedFiles } from '../../operator/cli/generated.js';
import { main } from '../../operator/cli/main.js';
import { EXAMPLES, exampleRaw, manifest, REPO } from './helpers.js';
import { structuralProblems, validate, type Schema } from './structural.js';

interface Version {
  name: string;
  subresources: Record<string, unknown>;
  additionalPrinterColumns: { name: string; jsonPath: string }[];
  schema: { openAPIV3Schema: Schema & { properties: Record<string, Schema> } };
}
const crd = buildCrd() as { spec: Record<string, unknown> & { versions: Version[] } };
const version = crd.spec.versions[0]!;
const root = version.schema.openAPIV3Schema;
const spec = root.properties.spec!;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('generated CRD', () => {
  it('names the API as the issue defines it', () => {
    expect(crd.spec.group).toBe('socketfleet.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({
      kind: 'RealtimeCluster',
      plural: 'realtimeclusters',
      shortNames: ['rtc'],
    });
    expect(version.name).toBe('v1alpha1');
  });

  it('is a structural schema whose defaults are valid', () => {
    expect(structuralProblems(root, 'openAPIV3Schema')).toEqual([]);
  });

  it('has status and scale subresources for kubectl scale and an HPA', () => {
    expect(version.subresources).toEqual({
      status: {},
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.selector',
      },
    });
  });

  it('has the printer columns', () => {
    expect(version.additionalPrinterColumns.map((c) => [c.name, c.jsonPath])).toEqual([
      ['Replicas', '.spec.replicas'],
      ['Ready', '.status.readyReplicas'],
      ['Shards', '.spec.redis.shards'],
      ['Redis', '.status.redis.clusterState'],
      ['Endpoint', '.status.endpoint'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
  });

  it('carries descriptions and defaults to kubectl explain', () => {
    const props = spec.properties as Record<string, Schema>;
    const shards = (props.redis!.properties as Record<string, Schema>).shards!;
    expect(shards.description).toMatch(/Redis Cluster masters/);
    expect(shards.default).toBe(1);
    expect(shards.minimum).toBe(1);
    expect(props.socketio!.default).toEqual({});
    expect(spec.default).toEqual({});
  });

  it('keeps quantities int-or-string and pass-through types open', () => {
    const props = spec.properties as Record<string, Schema>;
    const requests = (props.resources!.properties as Record<string, Schema>).requests!;
    expect(requests.additionalProperties).toMatchObject({ 'x-kubernetes-int-or-string': true });
    expect(props.affinity!['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect((props.tolerations!.items as Schema)['x-kubernetes-preserve-unknown-fields']).toBe(true);
  });

  it('has CEL rules for the cross-field constraints', () => {
    const props = spec.properties as Record<string, Schema>;
    const specRules = spec['x-kubernetes-validations'] as { rule: string; fieldPath: string }[];
    expect(specRules).toHaveLength(1);
    expect(specRules[0]!.rule).toContain('self.terminationGracePeriodSeconds');
    expect(specRules[0]!.fieldPath).toBe('.socketio.drainSeconds');
    const ioRules = props.socketio!['x-kubernetes-validations'] as { rule: string }[];
    expect(ioRules[0]!.rule).toContain('<= 300000');
  });

  it.each(EXAMPLES)('accepts examples/%s.yaml', (name) => {
    expect(validate(exampleRaw(name), root, '')).toEqual([]);
  });

  it('rejects what the API server must reject', () => {
    const bad = manifest({ redis: { shards: 0 }, shard: 2, gateway: { balance: 'random' } });
    expect(validate(bad, root, '')).toEqual([
      '.spec.redis.shards: too small',
      '.spec.shard: unknown field',
      '.spec.gateway.balance: not one of the enum values',
    ]);
  });
});

describe('toStructural', () => {
  it('rewrites what the API server refuses and the checker notices when it does not', () => {
    const raw = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      additionalProperties: false,
      properties: {
        labels: {
          type: 'object',
          propertyNames: { type: 'string' },
          additionalProperties: { type: 'string' },
        },
        free: { type: 'object', additionalProperties: {} },
        anything: {},
        size: {
          anyOf: [{ type: 'string', pattern: '^\\d+Gi$' }, { type: 'number' }],
          'x-kubernetes-int-or-string': true,
          default: '1Gi',
        },
        n: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
      },
    };
    expect(structuralProblems(raw).length).toBeGreaterThan(0);
    const out = toStructural(raw);
    expect(structuralProblems(out)).toEqual([]);
    expect(out).toEqual({
      type: 'object',
      properties: {
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        anything: { 'x-kubernetes-preserve-unknown-fields': true },
        size: {
          default: '1Gi',
          anyOf: [{ type: 'integer' }, { type: 'string' }],
          pattern: '^\\d+Gi$',
          'x-kubernetes-int-or-string': true,
        },
        n: { type: 'integer' },
      },
    });
  });
});

describe('gen', () => {
  it('committed generated files are up to date (gen --check)', async () => {
    for (const [rel, content] of Object.entries(generatedFiles())) {
      expect(readFileSync(join(REPO, rel), 'utf8'), rel).toBe(content);
    }
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await expect(main(['gen', '--check'])).resolves.toBe(0);
    expect(out).toHaveBeenCalledWith('gen --check: generated files are up to date\n');
  });

  it('the committed CRD YAML is the generated object', () => {
    const onDisk: unknown = parse(
      readFileSync(join(REPO, 'crds/socketfleet.dev_realtimeclusters.yaml'), 'utf8'),
    );
    expect(onDisk).toEqual(buildCrd());
  });

  it('crd prints the same YAML', async () => {
    const chunks: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
      chunks.push(String(c));
      return true;
    });
    await expect(main(['crd'])).resolves.toBe(0);
    expect(chunks.join('')).toBe(
      readFileSync(join(REPO, 'crds/socketfleet.dev_realtimeclusters.yaml'), 'utf8'),
    );
  });
});
