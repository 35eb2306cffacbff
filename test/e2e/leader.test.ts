// Two operator processes on one Lease: the standby makes no writes at all while the leader
// holds it, and takes over (and reconciles) as soon as the leader stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { applyYaml, condition, find, getJson } from './support/kube.js';
import { nonLeaseWrites, startOperator, type OperatorProcess } from './support/operator-process.js';
import { createNamespace, installCrd, minimalCluster } from './support/setup.js';

const ns = `e2e-leader-${process.pid}`;
const lease = `socketfleet-leader-${process.pid}`;
const args = ['--namespace', ns, '--lease-name', lease, '--leader-election-namespace', ns];

let cluster: Cluster;
let first: OperatorProcess | undefined;
let second: OperatorProcess | undefined;

function identity(p: OperatorProcess): string {
  const line = p.logs().find((l) => l.msg === 'operator starting');
  return String(line?.identity);
}

async function readyReplicas(): Promise<number | undefined> {
  const o = await find(cluster, ns, 'realtimecluster', 'demo');
  return condition(o, 'Ready')?.status === 'True' &&
    o?.status?.observedGeneration === o?.metadata.generation
    ? (o?.status?.readyReplicas as number)
    : undefined;
}

describe('leader election', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, ns);
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    if (cluster) {
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await cluster.stop();
    }
  });

  it('a second operator stands by without acting while the first holds the Lease', async () => {
    first = await startOperator(cluster.kubeconfigPath, args);
    await waitFor(
      'first operator to lead',
      async () => (await first!.gauge('socketfleet_operator_leader')) === 1,
      60_000,
    );
    second = await startOperator(cluster.kubeconfigPath, args);
    await waitFor(
      'second operator to stand by',
      () =>
        Promise.resolve(
          second!.logs().some((l) => l.msg === 'another operator holds the lease; standing by'),
        ),
      60_000,
    );
    expect(await second.readyz()).toBe(200);

    await applyYaml(cluster, ns, minimalCluster('demo'));
    await waitFor('demo Ready (2 replicas)', async () => (await readyReplicas()) === 2, 120_000);

    const held = await getJson<{ spec: { holderIdentity: string } }>(cluster, [
      '-n',
      ns,
      'get',
      'lease',
      lease,
    ]);
    expect(held.spec.holderIdentity).toBe(identity(first));
    expect(await first.counter('socketfleet_operator_reconciles_total')).toBeGreaterThan(0);
    expect(await second.gauge('socketfleet_operator_leader')).toBe(0);
    expect(await second.counter('socketfleet_operator_reconciles_total')).toBe(0);
    // Not one write, not even to the Lease: a standby only reads it.
    expect(await second.writes()).toEqual({});
  });

  it('takes over when the leader stops, and then reconciles', async () => {
    expect(await first!.stop()).toBe(0);
    first = undefined;
    // The leader released the Lease on SIGTERM, so the standby need not wait out its duration.
    await waitFor(
      'second operator to lead',
      async () => (await second!.gauge('socketfleet_operator_leader')) === 1,
      30_000,
    );
    const held = await getJson<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
      cluster,
      ['-n', ns, 'get', 'lease', lease],
    );
    expect(held.spec.holderIdentity).toBe(identity(second!));
    expect(held.spec.leaseTransitions).toBe(1);

    await cluster.kubectlOk(['-n', ns, 'scale', 'rtc/demo', '--replicas', '3']);
    await waitFor(
      'demo Ready (3 replicas) under the new leader',
      async () => (await readyReplicas()) === 3,
      120_000,
    );
    expect(await nonLeaseWrites(second!)).toBeGreaterThan(0);
    expect(await second!.counter('socketfleet_operator_reconciles_total')).toBeGreaterThan(0);
  });
});
