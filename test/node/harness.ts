// Real-node harness for vitest: starts one contained Kubernetes node (see up.sh),
// imports the images, and gives tests kubectl, loopback forwarders into the node's
// network namespace, and commands run inside it.
//
// Env:
//   SOCKETFLEET_CACHE        cache root (binaries, images, runs)
//   SOCKETFLEET_NODE_RUN     set by global-setup.ts: the run tests attach to
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binDir, cacheDir, run, type ExecResult } from '../cluster/harness.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '..', '..');

/** Addresses inside the node's network namespace (env.sh holds the same values). */
export const NODE_IP = '10.213.0.1';
/** Spare addresses on the node, one per forwarder, so the gateway sees distinct clients. */
export const CLIENT_SOURCE_IPS = Array.from({ length: 32 }, (_, i) => `10.213.0.${11 + i}`);

export interface RealNode {
  name: string;
  dir: string;
  kubeconfigPath: string;
  /** JSON lines: every API request at Metadata level, except heartbeats. */
  auditLogPath: string;
  binDir: string;
  env: NodeJS.ProcessEnv;
  kubectl(args: string[], input?: string): Promise<ExecResult>;
  kubectlOk(args: string[], input?: string): Promise<string>;
  /** Loopback port forwarding to host:port inside the node's namespace (from `source`). */
  forward(tag: string, host: string, port: number, source?: string): Promise<number>;
  /** Runs a command inside the node's network namespace. */
  inNetns(cmd: string, args: string[], timeoutMs?: number): Promise<ExecResult>;
  stop(): Promise<void>;
}

export function runDir(name: string): string {
  return join(cacheDir(), 'k8s-node', 'runs', name);
}

function attach(name: string, owned: boolean): RealNode {
  const dir = runDir(name);
  const kubeconfigPath = join(dir, 'kubeconfig');
  const bin = binDir();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: kubeconfigPath,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
  };
  const kubectl = (args: string[], input?: string): Promise<ExecResult> =>
    run(join(bin, 'kubectl'), ['--kubeconfig', kubeconfigPath, ...args], {
      env,
      ...(input !== undefined ? { input } : {}),
      timeoutMs: 180_000,
    });
  let stopped = false;
  return {
    name,
    dir,
    kubeconfigPath,
    auditLogPath: join(dir, 'logs', 'audit.log'),
    binDir: bin,
    env,
    kubectl,
    async kubectlOk(args: string[], input?: string): Promise<string> {
      const r = await kubectl(args, input);
      if (r.code !== 0) {
        throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      }
      return r.stdout;
    },
    async forward(tag: string, host: string, port: number, source?: string): Promise<number> {
      const args = [join(here, 'forward.sh'), name, tag, host, String(port)];
      if (source !== undefined) args.push(source);
      const r = await run('bash', args, { env });
      if (r.code !== 0) throw new Error(`forward.sh ${tag} exited ${r.code}: ${r.stderr.trim()}`);
      return Number(r.stdout.trim());
    },
    inNetns(cmd: string, args: string[], timeoutMs = 60_000): Promise<ExecResult> {
      return run('nsenter', [`--net=/run/netns/${name}`, '--', cmd, ...args], {
        env,
        timeoutMs,
      });
    },
    async stop(): Promise<void> {
      if (!owned || stopped) return;
      stopped = true;
      exitHooks.delete(name);
      await run('bash', [join(here, 'down.sh'), name], { env, teeStderr: true });
    },
  };
}

const exitHooks = new Map<string, () => void>();
let signalsInstalled = false;

// An interrupted run still tears its node down: on SIGINT/SIGTERM and at exit.
// A SIGKILLed one is reaped by the next run (reap.sh compares the owner's PID and
// start time).
function registerExitHook(name: string): void {
  exitHooks.set(name, () => {
    spawnSync('bash', [join(here, 'down.sh'), name], { stdio: 'inherit' });
  });
  if (signalsInstalled) return;
  signalsInstalled = true;
  const runHooks = (): void => {
    for (const hook of exitHooks.values()) hook();
    exitHooks.clear();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    runHooks();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.prependOnceListener('SIGINT', onSignal);
  process.prependOnceListener('SIGTERM', onSignal);
  process.prependOnceListener('exit', runHooks);
}

/** Builds (or reuses) every binary the node needs; slow only the first time. */
export async function buildNodeBinaries(): Promise<void> {
  const r = await run('bash', [join(repo, 'test', 'cluster', 'build.sh'), 'all'], {
    teeStderr: true,
  });
  if (r.code !== 0) throw new Error(`test/cluster/build.sh all failed (exit ${r.code})`);
}

/** Starts a node run owned by this process (reaping stale runs first). */
export async function startNode(name = `sfnode-${process.pid}`): Promise<RealNode> {
  await run('bash', [join(here, 'reap.sh')], { teeStderr: true });
  registerExitHook(name);
  const r = await run('bash', [join(here, 'up.sh'), name, String(process.pid)], {
    teeStderr: true,
  });
  if (r.code !== 0) {
    exitHooks.delete(name);
    throw new Error(`test/node/up.sh failed (exit ${r.code}); see its output above`);
  }
  return attach(name, true);
}

/** The run global-setup.ts started, for test files (they never stop it). */
export function attachNode(name = process.env.SOCKETFLEET_NODE_RUN): RealNode {
  if (!name) throw new Error('SOCKETFLEET_NODE_RUN is not set: run through the node project');
  if (!existsSync(runDir(name))) throw new Error(`node run ${name} does not exist`);
  return attach(name, false);
}

/** What containerd calls an image reference without a registry (as kubelet asks for it). */
export function normalizeRef(ref: string): string {
  const first = ref.split('/')[0]!;
  const hasDomain =
    ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/**
 * Imports OCI archives listed in an images.tsv (`<ref>\t<archive>`, archive relative
 * to the file) into the node's containerd, under the name kubelet will look up.
 * Returns the refs as listed.
 */
export async function importImages(node: RealNode, tsvPath: string): Promise<string[]> {
  const text = await readFile(tsvPath, 'utf8');
  const refs: string[] = [];
  const ctr = ['--address', join(node.dir, 'containerd.sock'), '-n', 'k8s.io'];
  // Archive names carry the image id; a store kept from an earlier run (env.sh) that has
  // imported this archive under this name already holds the image.
  const root = (await readFile(join(node.dir, 'containerd-root'), 'utf8')).trim();
  const markers = join(root, 'socketfleet-imported');
  await mkdir(markers, { recursive: true });
  const present = (await run('ctr', [...ctr, 'images', 'ls', '-q'])).stdout.split('\n');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [ref, archive] = line.split('\t');
    if (!ref || !archive) throw new Error(`${tsvPath}: bad line ${JSON.stringify(line)}`);
    const path = resolve(dirname(tsvPath), archive);
    const want = normalizeRef(ref);
    const marker = join(markers, `${basename(archive)}@${want.replaceAll('/', '_')}`);
    if (existsSync(marker) && present.includes(want)) {
      refs.push(ref);
      continue;
    }
    const r = await run('ctr', [...ctr, 'images', 'import', path], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`ctr import ${path} exited ${r.code}: ${r.stderr.trim()}`);
    const imported = /unpacking (\S+) \(sha256:/.exec(r.stdout)?.[1];
    if (imported && imported !== want) {
      const t = await run('ctr', [...ctr, 'images', 'tag', '--force', imported, want]);
      if (t.code !== 0) throw new Error(`ctr tag ${imported} ${want}: ${t.stderr.trim()}`);
    }
    const ls = await run('ctr', [...ctr, 'images', 'ls', '-q']);
    if (!ls.stdout.split('\n').includes(want)) {
      throw new Error(`importing ${path} did not create ${want} (ctr said: ${r.stdout.trim()})`);
    }
    await writeFile(marker, '');
    refs.push(ref);
  }
  return refs;
}
