// Rendered documents are plain Kubernetes objects; the tests read into them without types.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { main } from '../../operator/cli/main.js';
import { REPO } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'socketfleet-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
    stdout += String(c);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
    stderr += String(c);
    return true;
  });
  const code = await main(argv);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

const header = 'apiVersion: socketfleet.dev/v1alpha1\nkind: RealtimeCluster\n';

describe('socketfleet render', () => {
  it('prints shards x (StatefulSet + Service), the tuned Deployment and an ip-hash gateway', async () => {
    const r = await cli(['render', '-f', join(REPO, 'examples/full.yaml')]);
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, any>);
    const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`);
    for (let i = 0; i < 3; i++) {
      expect(kinds).toContain(`StatefulSet/chat-redis-${i}`);
      expect(kinds).toContain(`Service/chat-redis-${i}`);
    }
    const server = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'chat-server')!;
    expect(server.spec.template.spec.initContainers[0].securityContext.privileged).toBe(true);
    const gateway = docs.find(
      (d) => d.kind === 'Deployment' && d.metadata.name === 'chat-gateway',
    )!;
    const containers = gateway.spec.template.spec.containers as { name: string; args?: string[] }[];
    expect(containers.find((c) => c.name === 'sync')?.args).toContain('--balance=ip-hash');
    expect(kinds).not.toContain('Secret/chat-redis-acl');
    expect(r.stdout).toContain(
      '# Secret chat-redis-acl (Redis ACL passwords and their hashes) is not rendered: the operator creates it once with passwords derived from its key.',
    );
  });

  it('fails with one line per problem, naming the field path', async () => {
    const bad = file(
      'bad.yaml',
      `${header}metadata:\n  name: demo\nspec:\n  redis:\n    shards: 0\n  socketio:\n    parser: xml\n`,
    );
    const r = await cli(['render', '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'spec.socketio.parser: must be one of msgpack, json\nspec.redis.shards: must be >= 1\n',
    );
  });

  it('renders every RealtimeCluster of a multi-document file and skips other kinds', async () => {
    const multi = file(
      'multi.yaml',
      `${header}metadata:\n  name: one\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\n${header}metadata:\n  name: two\nspec:\n  gateway:\n    mode: none\n`,
    );
    const r = await cli(['render', '-f', multi, '-n', 'team-a']);
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, any>);
    expect(docs.some((d) => d.metadata.name === 'one-server')).toBe(true);
    expect(docs.some((d) => d.metadata.name === 'two-server')).toBe(true);
    expect(docs.some((d) => d.metadata.name === 'two-gateway')).toBe(false);
    expect(docs.every((d) => d.metadata.namespace === 'team-a')).toBe(true);
  });

  it('names the document of each problem in a multi-document file', async () => {
    const multi = file(
      'multi-bad.yaml',
      `${header}metadata:\n  name: one\n---\n${header}metadata:\n  name: two\nspec:\n  replicas: -1\n`,
    );
    const r = await cli(['render', '-f', multi]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('document 2: spec.replicas: must be >= 0\n');
  });

  it('explains a file without a RealtimeCluster, a missing file and missing arguments', async () => {
    const cm = file('cm.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n');
    expect(await cli(['render', '-f', cm])).toMatchObject({
      code: 1,
      stderr: 'document: no RealtimeCluster found; expected kind: RealtimeCluster\n',
    });
    expect(await cli(['render', '-f', join(dir, 'nope.yaml')])).toMatchObject({
      code: 1,
      stderr: `render: cannot read ${join(dir, 'nope.yaml')} (ENOENT)\n`,
    });
    const noFile = await cli(['render']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/^render: missing -f FILE; usage: socketfleet render -f FILE/);
  });

  it('renders an nginx.conf that includes the upstreams its sidecar keeps current', async () => {
    const r = await cli(['render', '-f', join(REPO, 'examples/minimal.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('include /tmp/nginx/upstreams.conf;');
    expect(r.stdout).not.toContain('upstream socketfleet_servers');
    const old = await cli(['render', '-f', join(REPO, 'examples/minimal.yaml'), '--endpoint', 'x']);
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/^render: unknown argument --endpoint;/);
  });

  it('reads YAML like kubectl does, so a bare off is a boolean', async () => {
    const f = file(
      'off.yaml',
      `${header}metadata:\n  name: demo\nspec:\n  tuning:\n    mode: off\n`,
    );
    expect(await cli(['render', '-f', f])).toMatchObject({
      code: 1,
      stderr:
        "spec.tuning.mode: must be one of privileged-init, safe-sysctls, off (quote 'off' in YAML)\n",
    });
  });

  it('prints warnings as comments and on stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-render-warn-'));
    const file = join(dir, 'proxy.yaml');
    writeFileSync(
      file,
      'apiVersion: socketfleet.dev/v1alpha1\nkind: RealtimeCluster\nmetadata:\n  name: rooms\n  namespace: realtime\nspec:\n  gateway:\n    proxyProtocol: true\n',
    );
    const r = await cli(['render', '-f', file]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# warning: spec.gateway.trustedProxies: empty with proxyProtocol');
    expect(r.stderr).toContain('warning: realtime/rooms: spec.gateway.trustedProxies:');
  });
});

describe('socketfleet main', () => {
  it('lists the commands with --help', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['render', 'crd', 'gen']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('rejects an unknown command with a pointer to --help', async () => {
    expect(await cli(['deploy'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'socketfleet: unknown command "deploy"; run socketfleet --help to list commands\n',
    });
  });

  it('runs as the entry module under tsx, as npm run gen does', () => {
    const r = spawnSync(
      join(REPO, 'node_modules/.bin/tsx'),
      [join(REPO, 'operator/cli/main.ts'), 'render', '-f', join(REPO, 'examples/minimal.yaml')],
      { encoding: 'utf8', cwd: REPO },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('name: demo-server');
  }, 60_000);
});
