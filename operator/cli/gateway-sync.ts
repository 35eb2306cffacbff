import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { BALANCE_MODES } from '../api/realtimecluster.js';
import type { Balance } from '../desired/nginx.js';
import type { EndpointSliceLike } from '../desired/upstreams.js';
import { NginxReloader, pidFromFile } from '../gateway/reloader.js';
import { FileWatch } from '../gateway/file-watch.js';
import { NginxErrorListener } from '../gateway/nginx-errors.js';
import { ReloadStatus } from '../gateway/reload-status.js';
import { GatewaySync } from '../gateway/sync.js';
import { KindInformer } from '../reconcile/informers.js';
import { KubeClient } from '../reconcile/kube-client.js';
import { requireKindInfo } from '../reconcile/kinds.js';

export const GATEWAY_SYNC_USAGE = `Usage: socketfleet gateway-sync --service NAME --balance MODE --upstreams-file FILE --pid-file FILE [options]

The gateway pod's sidecar: watches the EndpointSlices of the Socket.IO server Service, renders
nginx's upstream block with the operator's builder whenever they change, and reloads nginx
gracefully (SIGHUP to its master, found through the pid file in the shared process namespace).

  --service NAME              the server Service whose EndpointSlices to follow
  --namespace NS              default: the pod's namespace (service account), else "default"
  --balance MODE              ${BALANCE_MODES.join(' | ')}
  --upstreams-file FILE       the file nginx.conf includes
  --pid-file FILE             nginx's pid file
  --leaving-grace-seconds N   ip-hash: how long a departed server stays listed as down (default 40)
  --reload-on-change FILE     reload nginx when this file changes (the TLS certificate, renewed
                              in its Secret volume); checked every 10 s
  --metrics-port N            serve GET /metrics (socketfleet_gateway_config_rejected, reload
                              counters) and GET /rejection (nginx's last refusal) on this port
  --nginx-log-port N          receive nginx's emerg-level syslog on 127.0.0.1:N (UDP), so a
                              refused reload fails at once with nginx's message
  --kubeconfig PATH           default: in-cluster, else $KUBECONFIG
  --log-level LEVEL           default: info
`;

const FILE_WATCH_MS = 10_000;
const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface GatewaySyncFlags {
  service: string;
  namespace: string;
  balance: Balance;
  upstreamsFile: string;
  pidFile: string;
  leavingGraceSeconds: number;
  reloadOnChange: string | undefined;
  metricsPort: number | undefined;
  nginxLogPort: number | undefined;
  kubeconfig: string | undefined;
  logLevel: string;
}

function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new Error(`gateway-sync: --${name} is required.`);
  return v;
}

export function parseGatewaySyncFlags(argv: string[]): GatewaySyncFlags | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      service: { type: 'string' },
      namespace: { type: 'string' },
      balance: { type: 'string' },
      'upstreams-file': { type: 'string' },
      'pid-file': { type: 'string' },
      'leaving-grace-seconds': { type: 'string', default: '40' },
      'reload-on-change': { type: 'string' },
      'metrics-port': { type: 'string' },
      'nginx-log-port': { type: 'string' },
      kubeconfig: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const balance = required(values, 'balance');
  if (!(BALANCE_MODES as readonly string[]).includes(balance)) {
    throw new Error(
      `gateway-sync: --balance must be one of ${BALANCE_MODES.join(', ')}, got "${balance}".`,
    );
  }
  const grace = Number(values['leaving-grace-seconds']);
  if (!Number.isInteger(grace) || grace < 0 || grace > 86400) {
    throw new Error(
      `gateway-sync: --leaving-grace-seconds must be a whole number of seconds from 0 to 86400, got "${values['leaving-grace-seconds']}".`,
    );
  }
  const namespace =
    values.namespace ??
    (existsSync(SA_NAMESPACE_FILE) ? readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() : 'default');
  return {
    service: required(values, 'service'),
    namespace,
    balance: balance as Balance,
    upstreamsFile: required(values, 'upstreams-file'),
    pidFile: required(values, 'pid-file'),
    leavingGraceSeconds: grace,
    reloadOnChange: values['reload-on-change'],
    metricsPort: portFlag(values, 'metrics-port'),
    nginxLogPort: portFlag(values, 'nginx-log-port'),
    kubeconfig: values.kubeconfig,
    logLevel: values['log-level'],
  };
}

function portFlag(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`gateway-sync: --${name} must be a port from 1 to 65535, got "${v}".`);
  }
  return n;
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** Runs until SIGTERM/SIGINT. */
export async function syncGateway(flags: GatewaySyncFlags, log: Logger): Promise<number> {
  const kc = loadKubeConfig(flags.kubeconfig);
  const client = await KubeClient.create(kc);
  // The EndpointSlice controller labels each slice with its Service's name.
  const informer = new KindInformer(
    kc,
    client,
    requireKindInfo('discovery.k8s.io/v1', 'EndpointSlice'),
    flags.namespace,
    `kubernetes.io/service-name=${flags.service}`,
    log,
  );
  const status = new ReloadStatus();
  const errors =
    flags.nginxLogPort === undefined
      ? undefined
      : await NginxErrorListener.listen(flags.nginxLogPort);
  const metrics =
    flags.metricsPort === undefined ? undefined : await status.listen(flags.metricsPort);
  const reloader = new NginxReloader({
    upstreamsFile: flags.upstreamsFile,
    master: () => pidFromFile(flags.pidFile),
    status,
    ...(errors ? { errors } : {}),
  });
  const sync = new GatewaySync(() => informer.list(flags.namespace) as EndpointSliceLike[], {
    balance: flags.balance,
    leavingGraceMs: flags.leavingGraceSeconds * 1000,
    reloader,
    log,
  });
  informer.onEvent(() => sync.changed());
  await informer.start();
  await informer.synced;
  // The first render happens at once: nginx waits for this file before it starts.
  await sync.syncNow();
  const watch =
    flags.reloadOnChange === undefined
      ? undefined
      : new FileWatch(
          flags.reloadOnChange,
          FILE_WATCH_MS,
          async () => {
            const result = await reloader.reload();
            log.info({ file: flags.reloadOnChange, result }, 'file changed; nginx reloaded');
          },
          (err) =>
            log.error(
              { file: flags.reloadOnChange, err: err instanceof Error ? err.message : String(err) },
              'reloading nginx after a file change failed; trying again at the next check',
            ),
        );
  log.info(
    { namespace: flags.namespace, service: flags.service, balance: flags.balance },
    'following the server EndpointSlices',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  sync.stop();
  watch?.stop();
  errors?.close();
  metrics?.close();
  await informer.stop();
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  let flags: GatewaySyncFlags | 'help';
  try {
    flags = parseGatewaySyncFlags(argv);
  } catch (err) {
    process.stderr.write(
      `${err instanceof Error ? err.message : String(err)}\n\n${GATEWAY_SYNC_USAGE}`,
    );
    return 2;
  }
  if (flags === 'help') {
    process.stdout.write(GATEWAY_SYNC_USAGE);
    return 0;
  }
  const log = pino({
    level: flags.logLevel,
    base: { component: 'socketfleet-gateway-sync', pid: process.pid },
  });
  try {
    return await syncGateway(flags, log);
  } catch (err) {
    log.fatal({ err: err instanceof Error ? err.message : String(err) }, 'gateway-sync failed');
    return 1;
  }
}
