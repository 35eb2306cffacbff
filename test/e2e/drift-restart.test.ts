// Hand edits made while no operator runs are reverted when it starts: a Deployment scaled, a
// shard StatefulSet scaled, a PodDisruptionBudget loosened and a NetworkPolicy widened to allow
// everything. A fresh process has no memo of the generations it produced, so only managedFields
// can tell it that someone else wrote its fields.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { resourceNames } from '../../operator/desired/names.js';
import { applyYaml, condition, find, list, type Obj } from './support/kube.js';
import { startOperator, type OperatorProcess } from './support/operator-process.js';
import { createNamespace, installCrd, minimalCluster } from './support/setup.js';

const ns = `e2e-drift-${process.pid}`;
const lease = `socketfleet-drift-${process.pid}`;
const args = ['--namespace', ns, '--lease-name', lease, '--leader-election-namespace', ns];
const NAME = 'drift';
const names = resourceNames(NAME);
const INSTANCE = `app.kubernetes.io/instance=${NAME}`;

let cluster: Cluster;
let operator: OperatorProcess | undefined;

async function patch(kind: string, name: string, type: string, body: unknown): Promise<void> {
  await cluster.kubectlOk([
    '-n',
    ns,
    'patch',
    kind,
    name,
    `--type=${type}`,
    '-p',
    JSON.stringify(body),
  ]);
}

/** The fields the edits below change, per object. */
async function snapshot(): Promise<Record<string, unknown>> {
  const shard = (await list(cluster, ns, 'statefulsets', INSTANCE))[0]!;
  const pdb = (await list(cluster, ns, 'poddisruptionbudgets', INSTANCE))[0]!;
  const netpol = (await find(cluster, ns, 'networkpolicy', names.networkPolicy.server))!;
  const server = (await find(cluster, ns, 'deployment', names.server))!;
  const spec = (o: Obj): Record<string, unknown> => o.spec ?? {};
  return {
    [`deployment/${server.metadata.name}.replicas`]: spec(server).replicas,
    [`statefulset/${shard.metadata.name}.replicas`]: spec(shard).replicas,
    [`pdb/${pdb.metadata.name}.maxUnavailable`]: spec(pdb).maxUnavailable,
    [`networkpolicy/${netpol.metadata.name}.ingress`]: spec(netpol).ingress,
  };
}

describe('hand edits made while the operator is down', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, ns);
  });

  afterAll(async () => {
    await operator?.stop();
    if (cluster) {
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await cluster.stop();
    }
  });

  it('are reverted when it starts', async () => {
    operator = await startOperator(cluster.kubeconfigPath, args);
    await applyYaml(cluster, ns, minimalCluster(NAME));
    await waitFor(
      'the cluster to be Ready',
      async () => condition(await find(cluster, ns, 'rtc', NAME), 'Ready')?.status === 'True',
      120_000,
    );
    const before = await snapshot();
    expect(await operator.stop()).toBe(0);
    operator = undefined;

    const keys = Object.keys(before);
    const name = (i: number): string => keys[i]!.split('/')[1]!.split('.')[0]!;
    await cluster.kubectlOk(['-n', ns, 'scale', 'deployment', name(0), '--replicas', '7']);
    await cluster.kubectlOk(['-n', ns, 'scale', 'statefulset', name(1), '--replicas', '3']);
    await patch('pdb', name(2), 'merge', { spec: { maxUnavailable: 5 } });
    // Widened: one empty rule admits every source on every port.
    await patch('networkpolicy', name(3), 'json', [
      { op: 'replace', path: '/spec/ingress', value: [{}] },
    ]);
    const edited = await snapshot();
    for (const k of keys) expect(edited[k], k).not.toEqual(before[k]);

    operator = await startOperator(cluster.kubeconfigPath, args);
    const started = Date.now();
    const after = await waitFor(
      'every edit to be reverted',
      async () => {
        const now = await snapshot();
        return keys.every((k) => JSON.stringify(now[k]) === JSON.stringify(before[k]))
          ? now
          : undefined;
      },
      60_000,
      250,
    );
    console.log(`all 4 hand edits reverted ${Date.now() - started} ms after the operator started`);
    expect(after).toEqual(before);
    const reverted = operator
      .logs()
      .flatMap((l) => (Array.isArray(l.actions) ? (l.actions as string[]) : []))
      .filter((a) => a.startsWith('reverted a manual change to'));
    // Exactly the edited objects: fields other managers own beside ours cause no re-apply.
    expect(reverted.sort()).toEqual(
      [
        `Deployment/${name(0)}`,
        `StatefulSet/${name(1)}`,
        `PodDisruptionBudget/${name(2)}`,
        `NetworkPolicy/${name(3)}`,
      ]
        .map((o) => `reverted a manual change to ${o}`)
        .sort(),
    );
  });
});
