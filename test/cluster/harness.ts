// Test control plane harness: starts the kwok-based cluster built by
// test/cluster/build.sh (real etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler; kwok fakes the nodes) and hands tests a kubeconfig and a
// kubectl runner.
//
// Env:
//   SOCKETFLEET_CACHE         cache root for binaries and cluster state (default ~/.cache/socketfleet)
//   SOCKETFLEET_CLUSTER_NAME  cluster name for startCluster() (default socketfleet-run-<pid>, so
//                             concurrent runs do not collide; up.sh/down.sh default to socketfleet-test)
//   SOCKETFLEET_KUBECONFIG    when set, startCluster() attaches to that running cluster and stop() is a no-op
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const K8S_VERSION = process.env.SOCKETFLEET_K8S_VERSION ?? 'v1.36.3';

const here = dirname(fileURLToPath(import.meta.url));

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Cluster {
  name: string;
  kubeconfigPath: string;
  binDir: string;
  /** JSON-lines apiserver audit log: every write request (reads are not logged). */
  auditLogPath: string;
  /** Environment for child processes (KUBECONFIG, PATH with our kubectl first). */
  env: NodeJS.ProcessEnv;
  /** Runs our kubectl against the cluster; never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<ExecResult>;
  /** Like kubectl() but throws (with stderr) on a non-zero exit; resolves stdout. */
  kubectlOk(args: string[], input?: string): Promise<string>;
  /**
   * Creates (if missing) a ServiceAccount and writes a token kubeconfig for it, so a
   * process (e.g. the operator) runs under its own identity: RBAC is enforced and its
   * audit events carry user `system:serviceaccount:<namespace>:<name>`.
   * Returns the kubeconfig path (next to the admin one unless `path` is given).
   */
  serviceAccountKubeconfig(namespace: string, name: string, path?: string): Promise<string>;
  /** Tears the cluster down (no-op when attached to an externally started one). */
  stop(): Promise<void>;
}

export interface AuditEvent {
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  userAgent?: string;
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number; details?: { causes?: { reason?: string }[] } };
  stageTimestamp?: string;
}

export function cacheDir(): string {
  return process.env.SOCKETFLEET_CACHE ?? join(homedir(), '.cache', 'socketfleet');
}

/** Name of the cluster that up.sh/down.sh (the CLI) manage by default. */
export function clusterName(): string {
  return process.env.SOCKETFLEET_CLUSTER_NAME ?? 'socketfleet-test';
}

const RUN_PREFIX = 'socketfleet-run-';

/**
 * Clusters started by startCluster() are named socketfleet-run-<pid> so that
 * concurrent test runs (and a developer's `up.sh` cluster) never clobber each
 * other; one whose process is gone (killed with SIGKILL) is reaped here.
 */
async function reapOrphanedRunClusters(): Promise<void> {
  let names: string[];
  try {
    names = await readdir(join(cacheDir(), 'kwok', 'clusters'));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(RUN_PREFIX)) continue;
    const pid = Number(name.slice(RUN_PREFIX.length));
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) continue;
    await run('bash', [join(here, 'down.sh')], {
      env: { ...process.env, SOCKETFLEET_CLUSTER_NAME: name },
      teeStderr: true,
    });
  }
}

export function binDir(): string {
  return join(cacheDir(), 'k8s', K8S_VERSION, 'bin');
}

function clusterDir(name: string): string {
  return join(cacheDir(), 'kwok', 'clusters', name);
}

/** Runs a command, collecting output; stderr can be teed to ours for long builds. */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; teeStderr?: boolean; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (opts.teeStderr) process.stderr.write(d);
    });
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolvePromise({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function makeCluster(
  name: string,
  kubeconfigPath: string,
  owned: boolean,
  extraEnv: NodeJS.ProcessEnv,
): Cluster {
  const bin = binDir();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...extraEnv,
    KUBECONFIG: kubeconfigPath,
    SOCKETFLEET_KUBECONFIG: kubeconfigPath,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
  };
  const kubectl = (args: string[], input?: string): Promise<ExecResult> =>
    run(join(bin, 'kubectl'), ['--kubeconfig', kubeconfigPath, ...args], {
      env,
      ...(input !== undefined ? { input } : {}),
      timeoutMs: 120_000,
    });
  let stopped = false;
  return {
    name,
    kubeconfigPath,
    binDir: bin,
    auditLogPath: join(dirname(kubeconfigPath), 'logs', 'audit.log'),
    env,
    kubectl,
    async kubectlOk(args: string[], input?: string): Promise<string> {
      const r = await kubectl(args, input);
      if (r.code !== 0) {
        throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      }
      return r.stdout;
    },
    async serviceAccountKubeconfig(
      namespace: string,
      saName: string,
      path?: string,
    ): Promise<string> {
      const ok = async (args: string[], input?: string): Promise<string> => {
        const r = await kubectl(args, input);
        if (r.code !== 0) {
          throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
        }
        return r.stdout;
      };
      await ok(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: [
            { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
            { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: saName, namespace } },
          ],
        }),
      );
      const token = (
        await ok(['-n', namespace, 'create', 'token', saName, '--duration=24h'])
      ).trim();
      const server = await ok([
        'config',
        'view',
        '--minify',
        '-o',
        'jsonpath={.clusters[0].cluster.server}',
      ]);
      const ca = await ok([
        'config',
        'view',
        '--minify',
        '--raw',
        '-o',
        'jsonpath={.clusters[0].cluster.certificate-authority}',
      ]);
      const out =
        path ?? join(dirname(kubeconfigPath), `sa-${namespace}-${saName}.kubeconfig.json`);
      const ctx = `${namespace}-${saName}`;
      await writeFile(
        out,
        JSON.stringify(
          {
            apiVersion: 'v1',
            kind: 'Config',
            clusters: [
              { name: 'socketfleet-test', cluster: { server, 'certificate-authority': ca } },
            ],
            users: [{ name: ctx, user: { token } }],
            contexts: [
              { name: ctx, context: { cluster: 'socketfleet-test', user: ctx, namespace } },
            ],
            'current-context': ctx,
          },
          null,
          2,
        ),
        { mode: 0o600 },
      );
      return out;
    },
    async stop(): Promise<void> {
      if (!owned || stopped) return;
      stopped = true;
      unregisterExitHook(name);
      await run('bash', [join(here, 'down.sh')], { env, teeStderr: true });
    },
  };
}

const exitHooks = new Map<string, () => void>();
let signalsInstalled = false;

function registerExitHook(name: string, env: NodeJS.ProcessEnv): void {
  exitHooks.set(name, () => {
    spawnSync('bash', [join(here, 'down.sh')], { env, stdio: 'inherit' });
  });
  if (signalsInstalled) return;
  signalsInstalled = true;
  const runHooks = (): void => {
    for (const hook of exitHooks.values()) hook();
    exitHooks.clear();
  };
  // Prepended: vitest's own SIGINT/exit handlers call process.exit(), which would
  // skip listeners registered after them.
  const onSignal = (signal: NodeJS.Signals): void => {
    runHooks();
    // Nobody else handles the signal: restore the default (terminate).
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.prependOnceListener('SIGINT', onSignal);
  process.prependOnceListener('SIGTERM', onSignal);
  process.prependOnceListener('exit', runHooks);
}

function unregisterExitHook(name: string): void {
  exitHooks.delete(name);
}

/** Builds the binaries if needed (slow the first time, seconds afterwards). */
export async function buildBinaries(): Promise<string> {
  const r = await run('bash', [join(here, 'build.sh')], { teeStderr: true });
  if (r.code !== 0) throw new Error(`test/cluster/build.sh failed (exit ${r.code})`);
  return binDir();
}

/**
 * Starts the test cluster (building binaries first if needed) and returns a handle.
 * If SOCKETFLEET_KUBECONFIG is set, attaches to that running cluster instead.
 */
export async function startCluster(opts: { name?: string } = {}): Promise<Cluster> {
  const external = process.env.SOCKETFLEET_KUBECONFIG;
  if (external && opts.name === undefined) {
    if (!existsSync(external)) throw new Error(`SOCKETFLEET_KUBECONFIG=${external} does not exist`);
    return makeCluster(clusterName(), resolve(external), false, {});
  }
  await reapOrphanedRunClusters();
  const name = opts.name ?? process.env.SOCKETFLEET_CLUSTER_NAME ?? `${RUN_PREFIX}${process.pid}`;
  const extraEnv: NodeJS.ProcessEnv = { SOCKETFLEET_CLUSTER_NAME: name };
  const env = { ...process.env, ...extraEnv };
  delete env.SOCKETFLEET_KUBECONFIG;
  registerExitHook(name, env);
  const r = await run('bash', [join(here, 'up.sh')], { env, teeStderr: true });
  if (r.code !== 0) {
    unregisterExitHook(name);
    throw new Error(`test/cluster/up.sh failed (exit ${r.code}); see its output above`);
  }
  const kubeconfigPath = join(clusterDir(name), 'kubeconfig.yaml');
  if (!existsSync(kubeconfigPath)) {
    unregisterExitHook(name);
    throw new Error(`up.sh succeeded but ${kubeconfigPath} is missing`);
  }
  return makeCluster(name, kubeconfigPath, true, extraEnv);
}

/**
 * Parses the apiserver audit log. Only writes are logged (see up.sh's policy:
 * no get/list/watch, no leases in kube-system/kube-node-lease, no nodes/status).
 * Filters: `since` (stageTimestamp), `user` (exact username), `userAgent` (prefix).
 * All control plane components and the admin kubeconfig share the user `kwok-admin`;
 * tell them apart by userAgent, or give a process its own identity with
 * `cluster.serviceAccountKubeconfig()`.
 */
export async function readAuditEvents(
  auditLogPath: string,
  filter: { since?: Date; user?: string; userAgent?: string } = {},
): Promise<AuditEvent[]> {
  let text: string;
  try {
    text = await readFile(auditLogPath, 'utf8');
  } catch {
    return [];
  }
  const events: AuditEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let ev: AuditEvent;
    try {
      ev = JSON.parse(line) as AuditEvent;
    } catch {
      continue; // a partially written last line
    }
    if (filter.user !== undefined && ev.user?.username !== filter.user) continue;
    if (filter.userAgent !== undefined && !(ev.userAgent ?? '').startsWith(filter.userAgent)) {
      continue;
    }
    if (filter.since && ev.stageTimestamp && new Date(ev.stageTimestamp) < filter.since) continue;
    events.push(ev);
  }
  return events;
}

/** Polls fn until it returns a truthy value or the timeout expires. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs}ms waiting for ${what}` +
          (lastError instanceof Error ? `: ${lastError.message}` : ''),
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
