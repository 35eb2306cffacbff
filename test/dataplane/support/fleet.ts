import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RedisClusterFixture } from './redis-cluster.js';
import type { ServerConfigInput } from '../../../server-image/src/config.js';

export const ROOT = resolve(import.meta.dirname, '..', '..', '..');
export const ENTRYPOINT = join(ROOT, 'server-image', 'entrypoint.sh');
const SERVER_MAIN = join(ROOT, 'dist', 'server-image', 'src', 'main.js');

/** A free loopback port: the kernel picks it, so concurrent suites never collide on a fixed range. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined/false, or fails naming `what`. */
export async function until<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(100);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles the server image like `npm run build` does when dist/ is missing or older than its sources. */
export function ensureServerBuilt(): void {
  const src = join(ROOT, 'server-image', 'src');
  if (existsSync(SERVER_MAIN) && statSync(SERVER_MAIN).mtimeMs >= newestMtime(src)) return;
  const r = spawnSync('npx', ['tsc', '-p', join(ROOT, 'server-image', 'tsconfig.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (!existsSync(SERVER_MAIN)) {
    throw new Error(`building the server image failed:\n${r.stdout}\n${r.stderr}`);
  }
}

interface Managed {
  name: string;
  /** nginx must stop with SIGTERM: a SIGKILLed master leaves its workers running. */
  graceful?: boolean;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServerProcess {
  name: string;
  port: number;
  opsPort: number;
  url: string;
  logFile: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Prometheus text of /metrics. */
  metricsText(): Promise<string>;
  /** Sum of the samples of `name` whose labels contain every given label. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  readyz(): Promise<number>;
  logs(): string;
}

export interface NginxProcess {
  port: number;
  runtime: NginxRuntimeLike;
  url: string;
  confFile: string;
  /** Rewrites the conf and reloads nginx gracefully (SIGHUP), as the gateway does on endpoint changes. */
  reload(conf: string): Promise<void>;
}

function parseMetric(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labelText = m[3] ?? '';
    const ok = Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`));
    if (ok) sum += Number(m[4]);
  }
  return sum;
}

/**
 * Starts real redis-server, server (through server-image/entrypoint.sh) and nginx processes on
 * loopback ports for one test file and kills every one of them in stopAll(), even after failures
 * (and on process exit as a last resort).
 */
export class Fleet {
  readonly dir: string;
  private readonly managed: Managed[] = [];
  private readonly redisClusters: RedisClusterFixture[] = [];
  private readonly onExit = (): void => {
    for (const m of this.managed) if (m.child.exitCode === null) m.child.kill('SIGKILL');
  };
  private counter = 0;

  constructor(readonly label: string) {
    this.dir = mkdtempSync(join(tmpdir(), `socketfleet-${label}-`));
    process.on('exit', this.onExit);
  }

  private spawnManaged(
    name: string,
    command: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
  ): Managed {
    const logFile = join(this.dir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], env: env ?? process.env });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.once('exit', (code, signal) => res({ code, signal }));
    });
    const m = { name, child, exited };
    this.managed.push(m);
    return m;
  }

  /** Spawns a process this fleet kills in stopAll(); its output goes to `<dir>/<name>.log`. */
  spawn(name: string, command: string, args: string[]): Managed {
    return this.spawnManaged(name, command, args);
  }

  /**
   * A real Redis Cluster of `masters` masters with `replicas` replicas each, on loopback ports,
   * with a low cluster-node-timeout so failovers finish within seconds.
   */
  async redisCluster(
    opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number; password?: string } = {},
  ): Promise<RedisClusterFixture> {
    const cluster = new RedisClusterFixture(
      this,
      opts.password ?? 'dataplane-secret',
      opts.nodeTimeoutMs ?? 2000,
    );
    this.redisClusters.push(cluster);
    await cluster.create(opts.masters ?? 3, opts.replicas ?? 0);
    return cluster;
  }

  async server(
    /** Where and how the server logs in: the fixture, or any cluster a test runs itself. */
    redis: Pick<RedisClusterFixture, 'seeds' | 'serverEnv'>,
    overrides: Partial<ServerConfigInput> = {},
    options: { waitReady?: boolean; env?: NodeJS.ProcessEnv; inheritedSoftNofile?: number } = {},
  ): Promise<ServerProcess> {
    ensureServerBuilt();
    const [port, opsPort] = [await freePort(), await freePort()];
    const name = `server-${++this.counter}-${port}`;
    const config: ServerConfigInput = {
      port,
      opsPort,
      redis: { nodes: redis.seeds() },
      logLevel: 'info',
      ...overrides,
    };
    const configFile = join(this.dir, `${name}.json`);
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    // Optionally start from a shell with a low soft limit, as a container runtime might.
    const [command, args] =
      options.inheritedSoftNofile === undefined
        ? [ENTRYPOINT, []]
        : ['sh', ['-c', `ulimit -Sn ${options.inheritedSoftNofile} && exec "$0"`, ENTRYPOINT]];
    const m = this.spawnManaged(name, command, args, {
      ...process.env,
      SOCKETFLEET_CONFIG: configFile,
      ...redis.serverEnv(),
      // What the pod spec sets from status.podIP: the address the gateway reaches it at.
      SOCKETFLEET_SESSION_ADDRESS: '127.0.0.1',
      ...options.env,
    });
    const logFile = join(this.dir, `${name}.log`);
    const ops = `http://127.0.0.1:${opsPort}`;
    const proc: ServerProcess = {
      name,
      port,
      opsPort,
      url: `http://127.0.0.1:${port}`,
      logFile,
      child: m.child,
      exited: m.exited,
      metricsText: async () => (await fetch(`${ops}/metrics`)).text(),
      metric: async (metricName, labels = {}) =>
        parseMetric(await proc.metricsText(), metricName, labels),
      readyz: async () => (await fetch(`${ops}/readyz`)).status,
      logs: () => readFileSync(logFile, 'utf8'),
    };
    if (options.waitReady !== false) {
      await until(`${name} to be ready`, async () => {
        if (m.child.exitCode !== null) throw new Error(`${name} exited early:\n${proc.logs()}`);
        return (await proc.readyz()) === 200;
      });
    }
    return proc;
  }

  async nginx(render: (port: number, runtime: NginxRuntimeLike) => string): Promise<NginxProcess> {
    const port = await freePort();
    const base = join(this.dir, `nginx-${port}`);
    mkdirSync(join(base, 'tmp'), { recursive: true });
    const runtime: NginxRuntimeLike = {
      listenPort: port,
      pidFile: join(base, 'nginx.pid'),
      errorLog: join(base, 'error.log'),
      accessLog: join(base, 'access.log'),
      tempDir: join(base, 'tmp'),
      workerProcesses: 1,
      ...(process.getuid?.() === 0 ? { runAsUser: 'root' } : {}),
    };
    const confFile = join(base, 'nginx.conf');
    writeFileSync(confFile, render(port, runtime));
    const check = spawnSync('nginx', ['-t', '-p', base, '-c', confFile], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx rejected the rendered conf:\n${check.stderr}`);
    const m = this.spawnManaged(`nginx-${port}`, 'nginx', [
      '-p',
      base,
      '-c',
      confFile,
      '-g',
      'daemon off;',
    ]);
    m.graceful = true;
    await until(`nginx on port ${port}`, async () => {
      if (m.child.exitCode !== null)
        throw new Error(`nginx exited: ${readFileSync(runtime.errorLog, 'utf8')}`);
      return new Promise<boolean>((res) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          res(true);
        });
        s.on('error', () => res(false));
      });
    });
    return {
      port,
      runtime,
      url: `http://127.0.0.1:${port}`,
      confFile,
      reload: async (conf: string) => {
        writeFileSync(confFile, conf);
        const r = spawnSync('nginx', ['-t', '-p', base, '-c', confFile], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`nginx rejected the new conf:\n${r.stderr}`);
        m.child.kill('SIGHUP');
        // A reload starts new workers asynchronously; give them a moment to take the listener.
        await sleep(500);
      },
    };
  }

  /** Kills everything this fleet started and waits for each process to be gone. */
  async stopAll(): Promise<void> {
    for (const c of this.redisClusters) c.close();
    const running = (m: Managed): boolean =>
      m.child.exitCode === null && m.child.signalCode === null;
    for (const m of this.managed) if (running(m)) m.child.kill(m.graceful ? 'SIGTERM' : 'SIGKILL');
    await Promise.all(
      this.managed.map(async (m) => {
        const timer = setTimeout(() => m.child.kill('SIGKILL'), 5000);
        await m.exited;
        clearTimeout(timer);
      }),
    );
    process.off('exit', this.onExit);
    if (process.env.SOCKETFLEET_KEEP_TEST_DIR === undefined)
      rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The shape of operator/desired/nginx.ts's NginxRuntime, repeated so this helper has no operator import. */
export interface NginxRuntimeLike {
  listenPort: number;
  pidFile: string;
  errorLog: string;
  accessLog: string;
  tempDir: string;
  workerProcesses: number;
  runAsUser?: string;
}
