import { hostname } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { Controller } from '../reconcile/controller.js';
import { createEventRecorder } from '../reconcile/events.js';
import { startHealthServer, type HealthServer } from '../reconcile/health.js';
import { KubeClient } from '../reconcile/kube-client.js';
import { LeaderElector } from '../reconcile/leader.js';
import { DEFAULT_OPERATOR_KEY_FILE, loadOperatorKeys } from '../reconcile/operator-key.js';
import {
  kubeconfigTokenFile,
  RotatingKubeConfig,
  SERVICE_ACCOUNT_TOKEN,
} from '../reconcile/rotating-kubeconfig.js';
import { WriteGate } from '../reconcile/write-gate.js';
import { createMetrics } from '../reconcile/metrics.js';

export const OPERATOR_USAGE = `Usage: socketfleet operator [flags]

Runs the RealtimeCluster controller.

Flags:
  --kubeconfig PATH                  kubeconfig to use (default: in-cluster config, else $KUBECONFIG / ~/.kube/config)
  --namespace NS                     watch only these namespaces (repeatable or comma-separated; default: all)
  --metrics-port PORT                port of /metrics, /healthz and /readyz (default 8080)
  --leader-election true|false       run only while holding the leader Lease (default true)
  --leader-election-namespace NS     namespace of the Lease (default: the pod's namespace, else "default")
  --lease-name NAME                  name of the Lease (default socketfleet-operator)
  --lease-duration SECONDS           how long a standby waits on a silent leader before taking over (default 15)
  --renew-deadline SECONDS           the leader stops writing this long after its last renewal (default 10; < lease duration)
  --retry-period SECONDS             how often the leader renews and a standby retries (default 2; < renew deadline)
  --concurrency N                    clusters reconciled in parallel (default 4)
  --log-level LEVEL                  trace|debug|info|warn|error (default info)
  --redis-admin true|false           form, heal and reshard Redis Cluster over the network (default true;
                                     false only where pods do not run, e.g. kwok control-plane tests)
  --operator-key-file PATH           key the per-cluster Redis passwords are derived from, at least 32 bytes
                                     (default /etc/socketfleet/operator-key/key, mounted by the chart); a file
                                     "previous" next to it is tried too, for clusters made before a rotation
`;

export interface OperatorFlags {
  kubeconfig: string | undefined;
  namespaces: string[] | undefined;
  metricsPort: number;
  leaderElection: boolean;
  leaderElectionNamespace: string;
  leaseName: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  concurrency: number;
  logLevel: string;
  redisAdmin: boolean;
  operatorKeyFile: string;
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function podNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

function int(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`--${flag} must be an integer from ${min} to ${max}, got "${value}".`);
  }
  return n;
}

/** Parses the operator's flags; throws one actionable sentence on a bad flag. */
export function parseOperatorFlags(argv: string[]): OperatorFlags | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', multiple: true },
      'metrics-port': { type: 'string', default: '8080' },
      'leader-election': { type: 'string', default: 'true' },
      'leader-election-namespace': { type: 'string' },
      'lease-name': { type: 'string', default: 'socketfleet-operator' },
      'lease-duration': { type: 'string', default: '15' },
      'renew-deadline': { type: 'string', default: '10' },
      'retry-period': { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '4' },
      'log-level': { type: 'string', default: 'info' },
      'redis-admin': { type: 'string', default: 'true' },
      'operator-key-file': { type: 'string', default: DEFAULT_OPERATOR_KEY_FILE },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const le = values['leader-election'];
  if (le !== 'true' && le !== 'false') {
    throw new Error(`--leader-election must be true or false, got "${le}".`);
  }
  const ra = values['redis-admin'];
  if (ra !== 'true' && ra !== 'false') {
    throw new Error(`--redis-admin must be true or false, got "${ra}".`);
  }
  if (!LOG_LEVELS.includes(values['log-level'])) {
    throw new Error(
      `--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${values['log-level']}".`,
    );
  }
  const namespaces = (values.namespace ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  for (const ns of namespaces) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) {
      throw new Error(`--namespace "${ns}" is not a valid namespace name.`);
    }
  }
  const leaseDurationSeconds = int('lease-duration', values['lease-duration'], 2, 3600);
  const renewDeadlineSeconds = int('renew-deadline', values['renew-deadline'], 1, 3599);
  const retryPeriodSeconds = int('retry-period', values['retry-period'], 1, 3598);
  if (renewDeadlineSeconds >= leaseDurationSeconds) {
    throw new Error(
      `--renew-deadline (${renewDeadlineSeconds}) must be less than --lease-duration (${leaseDurationSeconds}), or two leaders could write at once.`,
    );
  }
  if (retryPeriodSeconds >= renewDeadlineSeconds) {
    throw new Error(
      `--retry-period (${retryPeriodSeconds}) must be less than --renew-deadline (${renewDeadlineSeconds}), or no renewal fits before the deadline.`,
    );
  }
  return {
    kubeconfig: values.kubeconfig,
    namespaces: namespaces.length > 0 ? [...new Set(namespaces)] : undefined,
    metricsPort: int('metrics-port', values['metrics-port'], 0, 65535),
    leaderElection: le === 'true',
    leaderElectionNamespace: values['leader-election-namespace'] ?? podNamespace(),
    leaseName: values['lease-name'],
    leaseDurationSeconds,
    renewDeadlineSeconds,
    retryPeriodSeconds,
    concurrency: int('concurrency', values.concurrency, 1, 64),
    logLevel: values['log-level'],
    redisAdmin: ra === 'true',
    operatorKeyFile: values['operator-key-file'],
  };
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new RotatingKubeConfig();
  if (path) {
    if (!existsSync(path)) {
      throw new Error(
        `The kubeconfig ${path} does not exist; pass --kubeconfig with an existing file.`,
      );
    }
    kc.loadFromFile(path);
    kc.useTokenFile(kubeconfigTokenFile(path, kc));
  } else if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
    kc.useTokenFile(SERVICE_ACCOUNT_TOKEN);
  } else {
    kc.loadFromDefault();
    const file = process.env.KUBECONFIG?.split(':')[0];
    if (file) kc.useTokenFile(kubeconfigTokenFile(file, kc));
  }
  return kc;
}

/** `socketfleet operator`: runs until SIGTERM/SIGINT; resolves the process exit code. */
export async function run(argv: string[]): Promise<number> {
  let flags: OperatorFlags | 'help';
  try {
    flags = parseOperatorFlags(argv);
  } catch (err) {
    process.stderr.write(
      `${err instanceof Error ? err.message : String(err)}\n\n${OPERATOR_USAGE}`,
    );
    return 2;
  }
  if (flags === 'help') {
    process.stdout.write(OPERATOR_USAGE);
    return 0;
  }
  let operatorKeys: Buffer[];
  try {
    operatorKeys = loadOperatorKeys(flags.operatorKeyFile);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const log = pino({
    level: flags.logLevel,
    base: { component: 'socketfleet-operator', pid: process.pid },
  });
  try {
    return await operate(flags, operatorKeys, log);
  } catch (err) {
    log.fatal(
      { err: 'Internal', detail: err instanceof Error ? err.message : String(err) },
      'operator failed',
    );
    return 1;
  }
}

async function operate(flags: OperatorFlags, operatorKeys: Buffer[], log: Logger): Promise<number> {
  const identity =
    process.env.POD_NAME ?? `${hostname()}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const kc = loadKubeConfig(flags.kubeconfig);
  const metrics = createMetrics();
  // Without leader election the gate is always open; with it, only while the Lease is ours.
  const gate = new WriteGate(!flags.leaderElection);
  const client = await KubeClient.create(kc, metrics.recordWrite, { identity, gate });
  const events = createEventRecorder(client, identity, log);
  const controller = new Controller({
    kc,
    client,
    namespaces: flags.namespaces,
    concurrency: flags.concurrency,
    metrics,
    events,
    log,
    redisAdmin: flags.redisAdmin,
    operatorKeys,
  });
  const elector = flags.leaderElection
    ? new LeaderElector({
        client,
        namespace: flags.leaderElectionNamespace,
        name: flags.leaseName,
        identity,
        log,
        leaseDurationSeconds: flags.leaseDurationSeconds,
        renewDeadlineMs: flags.renewDeadlineSeconds * 1000,
        retryPeriodMs: flags.retryPeriodSeconds * 1000,
      })
    : undefined;

  let leading = false;
  const health: HealthServer = await startHealthServer(flags.metricsPort, metrics.registry, () => {
    if (!leading) return { ok: true, detail: 'standby: waiting for the leader lease' };
    return controller.synced
      ? { ok: true, detail: 'ok' }
      : { ok: false, detail: 'caches not synced yet' };
  });
  log.info(
    {
      identity,
      namespaces: flags.namespaces ?? 'all',
      metricsPort: health.port,
      leaderElection: flags.leaderElection,
      lease: elector ? `${flags.leaderElectionNamespace}/${flags.leaseName}` : undefined,
    },
    'operator starting',
  );

  const stop = new AbortController();
  let exitCode = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'shutting down');
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    if (elector) {
      const acquired = await elector.acquire(stop.signal);
      if (!acquired) return 0;
      elector.keepRenewing(() => {
        // Another replica may already act; stopping at once is the only safe reaction.
        exitCode = 1;
        stop.abort();
      });
    }
    leading = true;
    metrics.leader.set(1);
    const stopped = new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      else stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    // A missing CRD keeps the caches from syncing; a signal must still end the process.
    await Promise.race([controller.start(), stopped]);
    await stopped;
    return exitCode;
  } finally {
    leading = false;
    metrics.leader.set(0);
    await controller.stop().catch(() => undefined);
    if (elector && exitCode === 0) {
      await elector
        .release()
        .catch((err: unknown) =>
          log.warn(
            { err: 'ApiTransient', detail: err instanceof Error ? err.message : String(err) },
            'could not release the lease',
          ),
        );
    }
    await health.close();
    client.close();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    log.info({ exitCode }, 'operator stopped');
  }
}
