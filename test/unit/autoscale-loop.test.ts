import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { detectAbnormalities, detectGatewayRejection } from '../../operator/autoscale/abnormal.js';
import { Autopilot } from '../../operator/autoscale/loop.js';
import {
  readGatewayMetrics,
  readServerMetrics,
  type GatewayReading,
  type ServerReading,
} from '../../operator/autoscale/prom-text.js';
import {
  INITIAL_REBALANCE_STATE,
  rebalanceDue,
} from '../../operator/autoscale/rebalance-trigger.js';
import { replicasClampWarning, serverReplicas } from '../../operator/desired/autoscaling.js';
import { buildNetworkPolicies } from '../../operator/desired/network-policy.js';
import { GATEWAY_SYNC_PORT, OPS_PORT } from '../../operator/desired/ports.js';
import type { EventRecorder } from '../../operator/reconcile/events.js';
import type { KindCache } from '../../operator/reconcile/informers.js';
import type { AnyObject, KubeClient } from '../../operator/reconcile/kube-client.js';
import { withAutopilot } from '../../operator/reconcile/autopilot-status.js';

const EXPOSITION = `# HELP socketfleet_connected_clients Socket.IO clients connected to this server.
# TYPE socketfleet_connected_clients gauge
socketfleet_connected_clients 1234
nodejs_eventloop_lag_p99_seconds 0.0125
socketfleet_bus_publish_failed_total{reason="redis-error"} 3
socketfleet_bus_publish_failed_total{reason="hold queue, full"} 2
socketfleet_bus_publish_short_total 1
socketfleet_draining 0
`;

function cluster(over: Record<string, unknown> = {}, replicas = 2): RealtimeCluster {
  const r = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'chat', namespace: 'ns', uid: 'u1', resourceVersion: '7', generation: 1 },
    spec: {
      replicas,
      autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 10, ...over },
    },
  });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.cluster;
}

const pod = (name: string, ip: string, ready = true, component = 'server'): AnyObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace: 'ns',
    labels: { 'app.kubernetes.io/instance': 'chat', 'app.kubernetes.io/component': component },
  },
  status: { podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

function harness(
  pods: AnyObject[],
  readings: Record<string, ServerReading | Error>,
  gateways: Record<string, GatewayReading | Error> = {},
) {
  const requests: { method: string; path: string; body: unknown }[] = [];
  const events: string[] = [];
  const enqueued: string[] = [];
  const client = {
    request: (method: string, path: string, opts: { body?: unknown }) => {
      requests.push({ method, path, body: opts.body });
      return Promise.resolve({});
    },
  } as unknown as KubeClient;
  const recorder: EventRecorder = {
    normal: (_t, reason, _a, note) => {
      events.push(`Normal ${reason}: ${note}`);
      return Promise.resolve();
    },
    warning: (_t, reason, _a, note) => {
      events.push(`Warning ${reason}: ${note}`);
      return Promise.resolve();
    },
  };
  const podCache = { list: () => pods } as unknown as KindCache;
  const ap = new Autopilot({
    client,
    clusters: { listAll: () => [] } as unknown as KindCache,
    pods: podCache,
    events: recorder,
    log: pino({ level: 'silent' }),
    enqueue: (k) => enqueued.push(k),
    scrape: (url) => {
      const r = readings[url];
      return r instanceof Error || r === undefined
        ? Promise.reject(r ?? new Error('no'))
        : Promise.resolve(r);
    },
    scrapeGateway: (base) => {
      const r = gateways[base];
      return r instanceof Error || r === undefined
        ? Promise.reject(r ?? new Error('no'))
        : Promise.resolve(r);
    },
    now: () => 1_000_000,
  });
  return { ap, requests, events, enqueued };
}

const reading = (connections: number, over: Partial<ServerReading> = {}): ServerReading => ({
  connections,
  lagMs: 1,
  lostPublishes: 0,
  draining: false,
  ...over,
});

describe('readServerMetrics', () => {
  it('reads connections, p99 lag in ms and every lost-publish series', () => {
    expect(readServerMetrics(EXPOSITION)).toEqual({
      connections: 1234,
      lagMs: 12.5,
      lostPublishes: 6,
      draining: false,
    });
    expect(readServerMetrics('').connections).toBeUndefined();
  });
});

describe('Autopilot.run', () => {
  it('scales through the scale subresource, guarded by resourceVersion, and says why', async () => {
    const h = harness(
      [pod('s-a', '10.0.0.1'), pod('s-b', '10.0.0.2'), pod('s-c', '10.0.0.3', false)],
      {
        'http://10.0.0.1:9090/metrics': reading(2600),
        'http://10.0.0.2:9090/metrics': reading(2400),
      },
    );
    await h.ap.run('ns/chat', cluster());
    expect(h.requests).toEqual([
      {
        method: 'PATCH',
        path: '/apis/socketfleet.dev/v1alpha1/namespaces/ns/realtimeclusters/chat/scale',
        body: { metadata: { resourceVersion: '7' }, spec: { replicas: 5 } },
      },
    ]);
    const reason = '5000 connections on 2 sampled pods, target 1000 per pod: 2 -> 5 replicas.';
    expect(h.events).toEqual([`Normal ScaleUp: ${reason}`]);
    expect(h.enqueued).toEqual(['ns/chat']);
    expect(h.ap.observation('ns/chat')?.autoscaling).toEqual({
      connections: 5000,
      sampledPods: 2,
      eventLoopLagMs: 1,
      desiredReplicas: 5,
      lastScaleTime: '1970-01-01T00:16:40Z',
      reason,
    });
  });

  it('does not scale down while a ready pod does not answer', async () => {
    const h = harness([pod('s-a', '10.0.0.1'), pod('s-b', '10.0.0.2')], {
      'http://10.0.0.1:9090/metrics': reading(10),
      'http://10.0.0.2:9090/metrics': new Error('refused'),
    });
    await h.ap.run(
      'ns/chat',
      cluster({ behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } }, 4),
    );
    expect(h.requests).toEqual([]);
    expect(h.ap.observation('ns/chat')?.autoscaling?.desiredReplicas).toBe(4);
  });

  it('reports a pile-up once as a Warning and in status conditions', async () => {
    const h = harness([pod('s-a', '10.0.0.1'), pod('s-b', '10.0.0.2'), pod('s-c', '10.0.0.3')], {
      'http://10.0.0.1:9090/metrics': reading(900),
      'http://10.0.0.2:9090/metrics': reading(50),
      'http://10.0.0.3:9090/metrics': reading(50),
    });
    const c = cluster({ enabled: false }, 3);
    await h.ap.run('ns/chat', c);
    await h.ap.run('ns/chat', c);
    expect(h.requests).toEqual([]);
    expect(h.events).toEqual([
      'Warning ConnectionsPileUp: s-a (900) hold more than 2x the mean of 333 connections per server.',
    ]);
    const status = withAutopilot({}, h.ap.observation('ns/chat'), 'T', 1);
    expect(status.autoscaling).toBeUndefined();
    expect(status.conditions?.find((x) => x.type === 'ConnectionsSkewed')).toMatchObject({
      status: 'True',
      reason: 'ConnectionsPileUp',
    });
  });
});

describe('GatewayConfigRejected', () => {
  const NGINX_SAID =
    'host not found in set_real_ip_from "10.0.0.300/8" in /etc/socketfleet/nginx/nginx.conf:37';
  const refused: GatewayReading = { configRejected: true, reloadFailures: 2, message: NGINX_SAID };
  const fine: GatewayReading = { configRejected: false, reloadFailures: 2 };

  it('reads the sidecar gauge and failure counter', () => {
    expect(
      readGatewayMetrics(
        '# TYPE socketfleet_gateway_config_rejected gauge\nsocketfleet_gateway_config_rejected 1\nsocketfleet_gateway_reload_failures_total 3\n',
      ),
    ).toEqual({ configRejected: true, reloadFailures: 3 });
    expect(readGatewayMetrics('')).toEqual({ configRejected: false, reloadFailures: 0 });
  });

  it("names the pods and nginx's message; no claim while no sidecar answers", () => {
    expect(detectGatewayRejection([{ pod: 'g-a', reading: undefined }])).toBeUndefined();
    expect(
      detectGatewayRejection([
        { pod: 'g-a', reading: fine },
        { pod: 'g-b', reading: refused },
        { pod: 'g-c', reading: undefined },
      ]),
    ).toEqual({
      type: 'GatewayConfigRejected',
      status: 'True',
      reason: 'NginxRejectedConfig',
      message: `nginx refused a new configuration on gateway pod(s) g-b and keeps serving the previous one; nginx said: ${NGINX_SAID}.`,
    });
    expect(
      detectGatewayRejection([{ pod: 'g-a', reading: { ...fine, configRejected: true } }])?.message,
    ).toBe(
      'nginx refused a new configuration on gateway pod(s) g-a and keeps serving the previous one; nginx gave no message.',
    );
    expect(detectGatewayRejection([{ pod: 'g-a', reading: fine }])).toMatchObject({
      status: 'False',
      reason: 'AsExpected',
    });
  });

  it("warns once with nginx's message, keeps the condition while no sidecar answers, clears after a good reload", async () => {
    const gw = `http://10.0.1.1:${GATEWAY_SYNC_PORT}`;
    const gateways: Record<string, GatewayReading | Error> = { [gw]: refused };
    const h = harness(
      [pod('s-a', '10.0.0.1'), pod('g-a', '10.0.1.1', false, 'gateway')],
      { 'http://10.0.0.1:9090/metrics': reading(10) },
      gateways,
    );
    const c = cluster({ enabled: false }, 1);
    await h.ap.run('ns/chat', c);
    await h.ap.run('ns/chat', c);
    gateways[gw] = new Error('refused');
    await h.ap.run('ns/chat', c);
    const status = withAutopilot({}, h.ap.observation('ns/chat'), 'T', 1);
    expect(status.conditions?.find((x) => x.type === 'GatewayConfigRejected')).toMatchObject({
      status: 'True',
      reason: 'NginxRejectedConfig',
    });
    gateways[gw] = fine;
    await h.ap.run('ns/chat', c);
    expect(h.events).toEqual([
      `Warning NginxRejectedConfig: nginx refused a new configuration on gateway pod(s) g-a and keeps serving the previous one; nginx said: ${NGINX_SAID}.`,
      'Normal GatewayConfigRejectedResolved: Every gateway pod runs the last configuration its sidecar gave nginx.',
    ]);
  });

  it('lets the operator reach the sync sidecar port', () => {
    const gateway = buildNetworkPolicies(cluster()).find((p) =>
      (p.metadata.name ?? '').endsWith('-gateway'),
    ) as { spec: { ingress: { from?: unknown[]; ports: { port: number }[] }[] } } | undefined;
    const rules = gateway?.spec.ingress.filter((r) =>
      r.ports.some((p) => p.port === GATEWAY_SYNC_PORT),
    );
    expect(rules?.[0]?.from).toEqual([
      {
        namespaceSelector: {},
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'socketfleet-operator',
            'app.kubernetes.io/component': 'operator',
          },
        },
      },
    ]);
  });
});

describe('detectAbnormalities', () => {
  const base = { lagThresholdMs: 200, replicasPerShard: 1, redis: undefined };
  const byType = (a: ReturnType<typeof detectAbnormalities>, t: string) =>
    a.find((x) => x.type === t);

  it('flags lag over the threshold', () => {
    const a = detectAbnormalities({
      ...base,
      pods: [{ pod: 'p', reading: reading(5, { lagMs: 350 }), lossDeltas: [] }],
    });
    expect(byType(a, 'EventLoopLagging')?.message).toBe(
      'Event-loop lag (p99) over 200 ms on p (350 ms).',
    );
  });

  it('flags publish loss only when it persists over three samples', () => {
    const persistent = detectAbnormalities({
      ...base,
      pods: [{ pod: 'p', reading: reading(5), lossDeltas: [1, 4, 2] }],
    });
    expect(byType(persistent, 'PublishLoss')?.status).toBe('True');
    const blip = detectAbnormalities({
      ...base,
      pods: [{ pod: 'p', reading: reading(5), lossDeltas: [0, 9, 0] }],
    });
    expect(byType(blip, 'PublishLoss')?.status).toBe('False');
  });

  it('flags a shard with no replica in sync, not one being retired', () => {
    const a = detectAbnormalities({
      ...base,
      pods: [],
      redis: {
        shards: [
          { index: 0, slots: 8192, replicas: 1, replicasInSync: 1 },
          { index: 1, slots: 8192, replicas: 0, replicasInSync: 0 },
          { index: 2, slots: 0, replicas: 0, replicasInSync: 0, retiring: true },
        ],
      },
    });
    expect(byType(a, 'ShardWithoutReplica')?.message).toBe(
      'Redis shard(s) 1 have no replica in sync: losing the master silences their rooms until it is back.',
    );
  });

  it('does not judge skew on a near-empty cluster', () => {
    const a = detectAbnormalities({
      ...base,
      pods: [
        { pod: 'a', reading: reading(9), lossDeltas: [] },
        { pod: 'b', reading: reading(0), lossDeltas: [] },
      ],
    });
    expect(byType(a, 'ConnectionsSkewed')?.status).toBe('False');
  });
});

describe('replica clamp and network policy', () => {
  it('clamps a hand-set spec.replicas into [min, max] and says so', () => {
    const c = cluster({ minReplicas: 2, maxReplicas: 4 }, 9);
    expect(serverReplicas(c.spec)).toBe(4);
    expect(replicasClampWarning(c.spec)).toBe(
      'spec.replicas: 9 is outside spec.autoscaling [2, 4], so 4 server pods run; change minReplicas/maxReplicas, or disable autoscaling to set replicas by hand.',
    );
    expect(serverReplicas(cluster({ enabled: false }, 9).spec)).toBe(9);
  });

  it('lets the operator reach the server metrics port', () => {
    const server = buildNetworkPolicies(cluster()).find((p) =>
      (p.metadata.name ?? '').endsWith('-server'),
    ) as { spec: { ingress: { from?: unknown[]; ports: { port: number }[] }[] } } | undefined;
    const rules = server?.spec.ingress.filter((r) => r.ports.some((p) => p.port === OPS_PORT));
    // The operator's pods by the chart's labels, in any namespace.
    expect(rules?.[0]?.from).toEqual([
      {
        namespaceSelector: {},
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'socketfleet-operator',
            'app.kubernetes.io/component': 'operator',
          },
        },
      },
    ]);
  });
});

describe('rebalanceDue', () => {
  const c = cluster({ enabled: false }, 3);
  it('takes the first set as the baseline, then fires once per settled change', () => {
    let s = INITIAL_REBALANCE_STATE;
    const step = (servers: string[], wanted = servers.length): boolean => {
      const d = rebalanceDue(c, servers, wanted, s);
      s = d.state;
      return d.due;
    };
    expect(step(['a', 'b'])).toBe(false);
    expect(step(['a', 'b'])).toBe(false);
    // A third server joins: not on the first sight (the gateway may not have reloaded yet).
    expect(step(['a', 'b', 'c'])).toBe(false);
    expect(step(['c', 'b', 'a'])).toBe(true);
    expect(step(['a', 'b', 'c'])).toBe(false);
    // A scale in progress (4 wanted, 3 ready) waits.
    expect(step(['a', 'b', 'c', 'd'], 5)).toBe(false);
    expect(step(['a', 'b', 'c', 'd'], 5)).toBe(false);
  });

  it('never fires when turned off or with another balance mode', () => {
    for (const spec of [{ rebalance: { enabled: false } }, { gateway: { balance: 'ip-hash' } }]) {
      const r = parseRealtimeCluster({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name: 'x' },
        spec,
      });
      if (!r.ok) throw new Error(r.problems.join('; '));
      let s = rebalanceDue(r.cluster, ['a'], 1, INITIAL_REBALANCE_STATE).state;
      for (let i = 0; i < 3; i++) {
        const d = rebalanceDue(r.cluster, ['a', 'b'], 2, s);
        expect(d.due).toBe(false);
        s = d.state;
      }
    }
  });
});
