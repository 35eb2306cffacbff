// The operator survives an API server outage: every watch fails, is restarted with backoff,
// and a spec change made after the control plane is back is reconciled (config and status).
// Runs on its own throwaway cluster, because a restarted kwok does not resume faking pods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { run, startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { resourceNames } from '../../operator/desired/names.js';
import { applyYaml, condition, find } from './support/kube.js';
import { startOperator, type OperatorProcess } from './support/operator-process.js';
import { createNamespace, installCrd, minimalCluster, repo } from './support/setup.js';

const name = `sf-restart-${process.pid}`;
const ns = 'restart';
const names = resourceNames('demo');

let cluster: Cluster;
let operator: OperatorProcess | undefined;

async function kwokctl(verb: 'stop' | 'start'): Promise<void> {
  const script = `source ${join(repo, 'test/cluster/env.sh')} && kwokctl --name "$CLUSTER_NAME" ${verb} cluster`;
  const r = await run('bash', ['-c', script], { env: cluster.env, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`kwokctl ${verb} cluster failed: ${r.stderr}`);
}

async function eventsPerSecondInConfig(): Promise<number | undefined> {
  const cm = await find(cluster, ns, 'configmap', names.serverConfig);
  const text = Object.values(cm?.data ?? {})[0];
  return text ? (JSON.parse(text) as { eventsPerSecond?: number }).eventsPerSecond : undefined;
}

describe('API server restart', () => {
  beforeAll(async () => {
    cluster = await startCluster({ name });
    await installCrd(cluster);
    await createNamespace(cluster, ns);
    await applyYaml(cluster, ns, minimalCluster('demo', { replicas: 1 }));
    // Leader election off: an outage longer than the renew deadline would (rightly) end a leader.
    operator = await startOperator(cluster.kubeconfigPath, [
      '--namespace',
      ns,
      '--leader-election',
      'false',
    ]);
    await waitFor(
      'demo Ready',
      async () =>
        condition(await find(cluster, ns, 'realtimecluster', 'demo'), 'Ready')?.status === 'True',
      120_000,
    );
  });

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  it('re-watches after the outage and reconciles a change made afterwards', async () => {
    await kwokctl('stop');
    await waitFor(
      'the operator to notice the dropped watches',
      () => Promise.resolve(operator!.logs().some((l) => l.msg === 'watch failed; restarting it')),
      30_000,
    );
    await kwokctl('start');
    await waitFor(
      'the API server to answer',
      async () => (await cluster.kubectl(['get', '--raw', '/readyz'])).code === 0,
      60_000,
    );

    await cluster.kubectlOk([
      '-n',
      ns,
      'patch',
      'rtc',
      'demo',
      '--type',
      'merge',
      '-p',
      '{"spec":{"socketio":{"eventsPerSecond":77}}}',
    ]);
    await waitFor(
      'the new rate in the server config',
      async () => (await eventsPerSecondInConfig()) === 77,
      90_000,
    );
    const live = await waitFor(
      'status for the new generation',
      async () => {
        const o = await find(cluster, ns, 'realtimecluster', 'demo');
        return o && o.status?.observedGeneration === o.metadata.generation ? o : undefined;
      },
      60_000,
    );
    expect(live.metadata.generation).toBeGreaterThan(1);
    expect(await operator!.readyz()).toBe(200);
  });
});
