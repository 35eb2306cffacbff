// A gateway configuration that nginx refuses, end to end on real processes: nginx on the
// operator's conf for the pod (with the emerg syslog line to the sidecar), the sync sidecar's
// own code (GatewaySync, the reloader on the pod's path: SIGHUP, no `nginx -t`, nginx's
// words from the syslog listener, the /metrics + /rejection server), and the operator's
// autopilot reading that sidecar over HTTP with its real scraper. About 3 s.
//
// The refused conf stands for what can reach a running gateway pod after validation: the
// kubelet updates the mounted nginx.conf and TLS files in place, so a renewed Secret whose key
// does not match its certificate, or an operator bug, is refused only at nginx's next reload
// (any server joining or leaving). It is made by editing a valid render: an impossible
// trusted-proxy address (10.0.0.300/8), which the API and the operator refuse in a spec.
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { detectGatewayRejection } from '../../operator/autoscale/abnormal.js';
import { Autopilot } from '../../operator/autoscale/loop.js';
import { scrapeGateway } from '../../operator/autoscale/scrape.js';
import { renderNginxConf, renderUpstreamBlock } from '../../operator/desired/nginx.js';
import { GATEWAY_SYNC_PORT } from '../../operator/desired/ports.js';
import { endpointsFromSlices, type EndpointSliceLike } from '../../operator/desired/upstreams.js';
import { NginxErrorListener } from '../../operator/gateway/nginx-errors.js';
import { ReloadStatus } from '../../operator/gateway/reload-status.js';
import type { GatewaySync } from '../../operator/gateway/sync.js';
import type { EventRecorder } from '../../operator/reconcile/events.js';
import type { KindCache } from '../../operator/reconcile/informers.js';
import type { KubeClient } from '../../operator/reconcile/kube-client.js';
import { Fleet } from './support/fleet.js';
import { startSyncedGateway } from './support/synced-gateway.js';

function parse(spec: Record<string, unknown>): RealtimeCluster {
  const r = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'rejected', namespace: 'ns', uid: 'u1' },
    spec,
  });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.cluster;
}

const good = parse({ replicas: 1 });
const trusting = parse({ replicas: 1, gateway: { trustedProxies: ['10.0.0.0/8'] } });

/** A stand-in upstream that answers every request with its name, so routing is visible. */
async function named(name: string): Promise<{ port: number; close: () => void }> {
  const server = http.createServer((_req, res) => res.end(name));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, close: () => server.close() };
}

const slice = (port: number): EndpointSliceLike => ({
  ports: [{ name: 'socketio', port }],
  endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
});

describe('a gateway configuration nginx refuses', () => {
  const fleet = new Fleet('gateway-rejected');
  let a: Awaited<ReturnType<typeof named>>;
  let b: Awaited<ReturnType<typeof named>>;
  let errors: NginxErrorListener;
  const status = new ReloadStatus();
  let metrics: http.Server;
  let sidecar: string;
  let sync: GatewaySync;
  let gatewayUrl: string;
  let confFile: string;
  let render: (c: RealtimeCluster) => string;
  let current: EndpointSliceLike[];

  beforeAll(async () => {
    a = await named('a');
    b = await named('b');
    current = [slice(a.port)];
    errors = await NginxErrorListener.listen(0);
    metrics = await status.listen(0, '127.0.0.1');
    const address = metrics.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    sidecar = `http://127.0.0.1:${address.port}`;
    const started = await startSyncedGateway(fleet, good, () => current, {
      runtime: { errorLogPort: errors.port },
      reloader: { errors, status },
    });
    sync = started.sync;
    gatewayUrl = started.nginx.url;
    confFile = started.nginx.confFile;
    const runtime = started.runtime;
    render = (c) => renderNginxConf(c, [], runtime);
  }, 30_000);

  afterAll(async () => {
    sync?.stop();
    errors?.close();
    metrics?.close();
    a?.close();
    b?.close();
    await fleet.stopAll();
  });

  /** Which upstream nginx sends a handshake to. */
  const routed = async (): Promise<string> =>
    (await fetch(`${gatewayUrl}/socket.io/?EIO=4&transport=polling`)).text();

  it("is refused with nginx's words, seen by the operator, and cleared by the next good reload", async () => {
    const events: string[] = [];
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
    const gatewayPod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'rejected-gateway-0',
        namespace: 'ns',
        labels: {
          'app.kubernetes.io/instance': 'rejected',
          'app.kubernetes.io/component': 'gateway',
        },
      },
      status: { podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
    };
    // The operator's loop with its real scraper; only the pod's fixed port is this test's free one.
    const autopilot = new Autopilot({
      client: {} as KubeClient,
      clusters: { listAll: () => [] } as unknown as KindCache,
      pods: { list: () => [gatewayPod] } as unknown as KindCache,
      events: recorder,
      log: pino({ level: 'silent' }),
      enqueue: () => undefined,
      scrapeGateway: (base) => {
        expect(base).toBe(`http://127.0.0.1:${GATEWAY_SYNC_PORT}`);
        return scrapeGateway(sidecar);
      },
    });
    const condition = async (): Promise<string | undefined> => {
      await autopilot.run('ns/rejected', good);
      const c = autopilot
        .observation('ns/rejected')
        ?.abnormalities.find((x) => x.type === 'GatewayConfigRejected');
      return c && `${c.status} ${c.reason}`;
    };

    expect(await routed()).toBe('a');
    expect(await condition()).toBe('False AsExpected');

    // A conf nginx refuses appears under the running pod.
    const refusable = render(trusting).replace(' 10.0.0.0/8;', ' 10.0.0.300/8;');
    expect(refusable).toContain('set_real_ip_from 10.0.0.300/8;');
    writeFileSync(confFile, refusable);
    const upstreamsBefore = readFileSync(`${fleet.dir}/upstreams.conf`, 'utf8');
    current = [slice(b.port)];
    const t0 = Date.now();
    await sync.syncNow();
    const refusedMs = Date.now() - t0;
    process.stdout.write(`gateway-rejected: refusal reported ${refusedMs} ms after the change\n`);

    // The sidecar: nginx's own message (only the syslog listener can have it on this path), the
    // previous upstreams back in the file, and nginx still routing by the previous ones.
    const said = `host not found in set_real_ip_from "10.0.0.300/8" in ${confFile}`;
    const reading = await scrapeGateway(sidecar);
    expect(reading.configRejected).toBe(true);
    expect(reading.reloadFailures).toBeGreaterThanOrEqual(1);
    expect(reading.message).toMatch(
      new RegExp(`^${said.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+$`),
    );
    expect(readFileSync(`${fleet.dir}/upstreams.conf`, 'utf8')).toBe(upstreamsBefore);
    expect(await routed()).toBe('a');
    // The operator's pure check and its loop (condition + one Warning with nginx's words).
    expect(detectGatewayRejection([{ pod: 'rejected-gateway-0', reading }])?.status).toBe('True');
    expect(await condition()).toBe('True NginxRejectedConfig');
    expect(await condition()).toBe('True NginxRejectedConfig');
    expect(events).toEqual([
      `Warning NginxRejectedConfig: nginx refused a new configuration on gateway pod(s) rejected-gateway-0 and keeps serving the previous one; nginx said: ${reading.message!}.`,
    ]);

    // The user fixes the spec; the next change reloads and clears it.
    writeFileSync(confFile, render(good));
    await sync.syncNow();
    expect(readFileSync(`${fleet.dir}/upstreams.conf`, 'utf8')).toBe(
      renderUpstreamBlock(good.spec.gateway.balance, endpointsFromSlices(current)),
    );
    expect(await routed()).toBe('b');
    expect((await scrapeGateway(sidecar)).configRejected).toBe(false);
    expect(await condition()).toBe('False AsExpected');
    expect(events.slice(1)).toEqual([
      'Normal GatewayConfigRejectedResolved: Every gateway pod runs the last configuration its sidecar gave nginx.',
    ]);
  }, 60_000);
});
