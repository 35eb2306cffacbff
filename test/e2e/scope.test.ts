// --namespace confines the operator to its namespaces; without it, it serves all of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { applyYaml, condition, find, list } from './support/kube.js';
import { startOperator, type OperatorProcess } from './support/operator-process.js';
import { createNamespace, installCrd, minimalCluster } from './support/setup.js';

const mine = `e2e-scope-a-${process.pid}`;
const other = `e2e-scope-b-${process.pid}`;

let cluster: Cluster;
let operator: OperatorProcess | undefined;

async function isReady(ns: string): Promise<boolean> {
  return condition(await find(cluster, ns, 'realtimecluster', 'demo'), 'Ready')?.status === 'True';
}

describe('namespace scope', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, mine);
    await createNamespace(cluster, other);
    await applyYaml(cluster, mine, minimalCluster('demo'));
    await applyYaml(cluster, other, minimalCluster('demo'));
  });

  afterAll(async () => {
    await operator?.stop();
    if (cluster) {
      await cluster.kubectl(['delete', 'namespace', mine, other, '--wait=false']);
      await cluster.stop();
    }
  });

  it('with --namespace, reconciles only that namespace', async () => {
    operator = await startOperator(cluster.kubeconfigPath, [
      '--namespace',
      mine,
      '--leader-election-namespace',
      mine,
      '--lease-name',
      'scope-namespaced',
    ]);
    await waitFor(`demo Ready in ${mine}`, () => isReady(mine), 120_000);
    // Give it time to (wrongly) act elsewhere: a reconcile takes well under a second here.
    await new Promise((r) => setTimeout(r, 3000));
    const untouched = await find(cluster, other, 'realtimecluster', 'demo');
    expect(untouched?.status).toBeUndefined();
    expect(await list(cluster, other, 'deployments')).toEqual([]);
    expect(await operator.stop()).toBe(0);
    operator = undefined;
  });

  it('without --namespace, reconciles every namespace', async () => {
    operator = await startOperator(cluster.kubeconfigPath, [
      '--leader-election-namespace',
      other,
      '--lease-name',
      'scope-all',
    ]);
    await waitFor(`demo Ready in ${other}`, () => isReady(other), 120_000);
    expect(await isReady(mine)).toBe(true);
  });
});
