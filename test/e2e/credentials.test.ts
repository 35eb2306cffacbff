// Bound ServiceAccount tokens rotate: the operator reads its token file again when it changes.
// It runs as its own ServiceAccount with a kubeconfig whose user has `tokenFile`; the token is
// bound to a Secret, so deleting that Secret revokes it at once (the shortest-lived token the
// API server can issue). After the file is rewritten with a new token and the old one revoked,
// the operator must keep working. About 40 s.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readAuditEvents, startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { applyYaml, condition, find } from './support/kube.js';
import { startOperator, type OperatorProcess } from './support/operator-process.js';
import { createNamespace, installCrd, minimalCluster } from './support/setup.js';

const ns = `e2e-creds-${process.pid}`;
const sa = 'rotating';
const user = `system:serviceaccount:${ns}:${sa}`;
let cluster: Cluster;
let operator: OperatorProcess | undefined;
let dir: string;

async function boundToken(secret: string): Promise<string> {
  await cluster.kubectlOk(['-n', ns, 'create', 'secret', 'generic', secret]);
  const out = await cluster.kubectlOk([
    '-n',
    ns,
    'create',
    'token',
    sa,
    '--bound-object-kind=Secret',
    `--bound-object-name=${secret}`,
    '--duration=10m',
  ]);
  return out.trim();
}

/** Whether the API server accepts the token (a kubeconfig with no client certificate). */
async function accepted(token: string): Promise<boolean> {
  const file = join(dir, 'probe.kubeconfig');
  writeFileSync(file, kubeconfigFor({ token }));
  const r = await cluster.kubectl(['--kubeconfig', file, '-n', ns, 'auth', 'whoami']);
  return r.code === 0;
}

function kubeconfigFor(user: Record<string, string>): string {
  const admin = parse(readFileSync(cluster.kubeconfigPath, 'utf8')) as {
    clusters: { cluster: Record<string, string> }[];
  };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: admin.clusters[0]!.cluster }],
    users: [{ name: sa, user }],
    contexts: [{ name: sa, context: { cluster: 'test', user: sa } }],
    'current-context': sa,
  });
}

async function replicasReady(n: number): Promise<boolean> {
  const o = await find(cluster, ns, 'realtimecluster', 'creds');
  return (
    condition(o, 'Ready')?.status === 'True' &&
    o?.status?.observedGeneration === o?.metadata.generation &&
    o?.status?.readyReplicas === n
  );
}

describe('credential rotation', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, ns);
    dir = mkdtempSync(join(tmpdir(), 'sf-creds-'));
  });

  afterAll(async () => {
    await operator?.stop();
    if (cluster) {
      await cluster.kubectl(['delete', 'clusterrolebinding', ns, '--ignore-not-found']);
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await cluster.stop();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps working after its token file is rewritten and the old token revoked', async () => {
    await cluster.kubectlOk(['-n', ns, 'create', 'serviceaccount', sa]);
    await cluster.kubectlOk([
      'create',
      'clusterrolebinding',
      ns,
      '--clusterrole=cluster-admin',
      `--serviceaccount=${ns}:${sa}`,
    ]);
    const first = await boundToken('token-one');
    const second = await boundToken('token-two');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, first);
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, kubeconfigFor({ tokenFile }));
    expect(await accepted(first)).toBe(true);

    operator = await startOperator(kubeconfig, [
      '--namespace',
      ns,
      '--lease-name',
      'creds',
      '--leader-election-namespace',
      ns,
    ]);
    await applyYaml(cluster, ns, minimalCluster('creds'));
    await waitFor('Ready with the first token', () => replicasReady(2), 120_000);

    // Rotate as the kubelet does (write elsewhere, rename over), then revoke the old token.
    writeFileSync(`${tokenFile}.new`, second);
    renameSync(`${tokenFile}.new`, tokenFile);
    const rotatedAt = new Date();
    await cluster.kubectlOk(['-n', ns, 'delete', 'secret', 'token-one']);
    await waitFor('the first token to be refused', async () => !(await accepted(first)), 60_000);
    expect(await accepted(second)).toBe(true);

    await cluster.kubectlOk(['-n', ns, 'scale', 'rtc/creds', '--replicas', '3']);
    await waitFor('Ready at 3 replicas with the second token', () => replicasReady(3), 120_000);
    const audit = await readAuditEvents(cluster.auditLogPath, { since: rotatedAt, user });
    const ok = audit.filter((e) => (e.responseStatus?.code ?? 0) < 300);
    expect(ok.length).toBeGreaterThan(0);
    expect(operator.output()).not.toContain(second);
  });
});
