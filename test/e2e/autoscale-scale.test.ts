// The autopilot's Kubernetes side against the real API server: spec.replicas set through the
// scale subresource (merge patch guarded by resourceVersion), its Event, a stale decision
// refused, and the CEL rule on minReplicas/maxReplicas. The pods' metrics come from a scraper
// stub (kwok-less: no pod runs in this suite); the scraper and decider against real servers are
// test/dataplane/autoscale-ramp.test.ts. About 10 s on a running control plane.
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { Autopilot } from '../../operator/autoscale/loop.js';
import type { ServerReading } from '../../operator/autoscale/prom-text.js';
import { createEventRecorder } from '../../operator/reconcile/events.js';
import type { KindCache } from '../../operator/reconcile/informers.js';
import { KubeClient, type AnyObject } from '../../operator/reconcile/kube-client.js';
import { startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { getJson } from './support/kube.js';
import { createNamespace, installCrd } from './support/setup.js';

const ns = `e2e-autoscale-${process.pid}`;
let cluster: Cluster;
let client: KubeClient;

const pod = (name: string, ip: string): AnyObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace: ns,
    labels: { 'app.kubernetes.io/instance': 'chat', 'app.kubernetes.io/component': 'server' },
  },
  status: { podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
});

async function current(): Promise<RealtimeCluster> {
  const raw = await getJson(cluster, ['-n', ns, 'get', 'rtc', 'chat']);
  const r = parseRealtimeCluster(raw);
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.cluster;
}

function autopilot(connections: number[]): Autopilot {
  const pods = connections.map((_, i) => pod(`chat-server-${i}`, `10.0.0.${i + 1}`));
  return new Autopilot({
    client,
    clusters: { listAll: () => [] } as unknown as KindCache,
    pods: { list: () => pods } as unknown as KindCache,
    events: createEventRecorder(client, 'e2e', pino({ level: 'silent' })),
    log: pino({ level: 'silent' }),
    enqueue: () => undefined,
    // The stub answers by IP; nothing is sent to these addresses.
    scrape: (url) => {
      const i = Number(/10\.0\.0\.(\d+)/.exec(url)?.[1]) - 1;
      const reading: ServerReading = {
        connections: connections[i],
        lagMs: 1,
        lostPublishes: 0,
        draining: false,
      };
      return Promise.resolve(reading);
    },
  });
}

describe('autopilot scale subresource', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, ns);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    client = await KubeClient.create(kc);
    await cluster.kubectlOk(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name: 'chat' },
        spec: { replicas: 2, autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 4 } },
      }),
    );
  });

  afterAll(async () => {
    client?.close();
    if (cluster) {
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await cluster.stop();
    }
  });

  it('sets spec.replicas through /scale, capped at maxReplicas, with an Event saying why', async () => {
    const before = await current();
    await autopilot([2600, 2400]).run(`${ns}/chat`, before);
    expect((await current()).spec.replicas).toBe(4);
    const events = await waitFor('the ScaleUp event', async () => {
      const list = await getJson<{ items: { reason: string; note: string }[] }>(cluster, [
        '-n',
        ns,
        'get',
        'events.events.k8s.io',
      ]);
      const found = list.items.filter((e) => e.reason === 'ScaleUp');
      return found.length > 0 ? found : undefined;
    });
    expect(events[0]?.note).toBe(
      '5000 connections on 2 sampled pods, target 1000 per pod: 2 -> 4 replicas.',
    );
  });

  it('refuses a decision made on a stale object, so a kubectl scale in between wins', async () => {
    const stale = await current();
    await cluster.kubectlOk(['-n', ns, 'scale', 'rtc/chat', '--replicas=3']);
    const ap = autopilot([100, 100, 100, 100]);
    // 400 connections want 1 replica (scale-down window aside): the patch carries the old
    // resourceVersion and the API server refuses it.
    await ap.run(`${ns}/chat`, stale);
    expect((await current()).spec.replicas).toBe(3);
  });

  it('brings a hand-set count above maxReplicas back into range', async () => {
    await cluster.kubectlOk(['-n', ns, 'scale', 'rtc/chat', '--replicas=9']);
    await autopilot([100, 100]).run(`${ns}/chat`, await current());
    expect((await current()).spec.replicas).toBe(4);
  });

  it('refuses minReplicas above maxReplicas at the API server, naming the field', async () => {
    const r = await cluster.kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name: 'bad' },
        spec: { autoscaling: { minReplicas: 5, maxReplicas: 3 } },
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.autoscaling.minReplicas');
    expect(r.stderr).toContain('minReplicas must not exceed maxReplicas');
  });
});
