import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { RealtimeCluster } from '../../../operator/api/realtimecluster.js';
import {
  renderNginxConf,
  renderUpstreamBlock,
  type NginxRuntime,
} from '../../../operator/desired/nginx.js';
import {
  endpointsFromSlices,
  type EndpointSliceLike,
} from '../../../operator/desired/upstreams.js';
import {
  NginxReloader,
  pidFromFile,
  type ReloaderOptions,
} from '../../../operator/gateway/reloader.js';
import { GatewaySync } from '../../../operator/gateway/sync.js';
import type { Fleet, NginxProcess, ServerProcess } from './fleet.js';

/** A server as the gateway's EndpointSlice sees it: ready, or terminating once it is retired. */
export interface GatewayMember {
  server: ServerProcess;
  ready: boolean;
}

/** The EndpointSlices a test plays the controller with: one endpoint per member, on loopback. */
export function slicesOf(members: readonly GatewayMember[]): EndpointSliceLike[] {
  return members.map((m) => ({
    ports: [{ name: 'socketio', port: m.server.port }],
    endpoints: [
      { addresses: ['127.0.0.1'], conditions: { ready: m.ready, terminating: !m.ready } },
    ],
  }));
}

/** What a test adds to the pod's sidecar setup: nginx's error syslog, the reload status. */
export interface SyncedGatewayOptions {
  runtime?: Pick<NginxRuntime, 'errorLogPort'>;
  reloader?: Pick<ReloaderOptions, 'errors' | 'status'>;
}

/**
 * nginx on the operator's rendered conf, with the sync sidecar's GatewaySync and reloader keeping
 * its upstreams file current from `slices` (call `sync.syncNow()` after editing them); synced once
 * before it returns. `runtime` is what nginx.conf was rendered with.
 */
export async function startSyncedGateway(
  fleet: Fleet,
  cluster: RealtimeCluster,
  slices: () => EndpointSliceLike[],
  opts: SyncedGatewayOptions = {},
): Promise<{ nginx: NginxProcess; sync: GatewaySync; runtime: NginxRuntime }> {
  let sync: GatewaySync | undefined;
  let runtime: NginxRuntime | undefined;
  const nginx = await fleet.nginx((_port, rt) => {
    runtime = { ...rt, ...opts.runtime, upstreamsFile: join(fleet.dir, 'upstreams.conf') };
    // What the sidecar writes before nginx starts (nginx.conf includes it).
    writeFileSync(
      runtime.upstreamsFile!,
      renderUpstreamBlock(cluster.spec.gateway.balance, endpointsFromSlices(slices())),
    );
    const pidFile = runtime.pidFile;
    const reloader = new NginxReloader({
      ...opts.reloader,
      upstreamsFile: runtime.upstreamsFile!,
      master: () => pidFromFile(pidFile),
    });
    sync = new GatewaySync(slices, {
      balance: cluster.spec.gateway.balance,
      leavingGraceMs: 0,
      reloader,
      log: pino({ level: 'warn' }),
    });
    return renderNginxConf(cluster, [], runtime);
  });
  await sync!.syncNow();
  return { nginx, sync: sync!, runtime: runtime! };
}
