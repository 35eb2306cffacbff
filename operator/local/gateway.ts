import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { leavingGraceSeconds } from '../desired/gateway.js';
import { renderNginxConf, renderUpstreamBlock, type NginxRuntime } from '../desired/nginx.js';
import type { Endpoint } from '../desired/types.js';
import { LeavingServers } from '../gateway/leaving.js';
import { NginxReloader } from '../gateway/reloader.js';
import { canConnect, waitFor } from './ports.js';
import { Supervised } from './process.js';

/** The operator's nginx.conf, pointed at files under the state dir instead of the pod's paths. */
export function localNginxRuntime(
  stateDir: string,
  listenPort: number,
  workerProcesses: number | 'auto' = 'auto',
  reusePort = false,
): NginxRuntime {
  const dir = join(stateDir, 'nginx');
  return {
    listenPort,
    pidFile: join(dir, 'nginx.pid'),
    errorLog: join(stateDir, 'logs', 'nginx-error.log'),
    accessLog: 'off',
    tempDir: join(dir, 'tmp'),
    workerProcesses,
    reusePort,
    upstreamsFile: join(dir, 'upstreams.conf'),
    // As root nginx would drop its workers to nobody, who cannot read a state dir under /root.
    ...(process.getuid?.() === 0 ? { runAsUser: 'root' } : {}),
  };
}

export class Gateway {
  private proc: Supervised | undefined;
  private readonly confPath: string;
  private readonly runtime: NginxRuntime;
  private readonly reloader: NginxReloader;
  private leaving: LeavingServers | undefined;
  private lastConf: string | undefined;
  private hadNoUpstreams = true;

  constructor(
    private readonly nginx: string,
    private readonly stateDir: string,
    readonly port: number,
    workerProcesses: number | 'auto' = 'auto',
    reusePort = false,
  ) {
    this.runtime = localNginxRuntime(stateDir, port, workerProcesses, reusePort);
    mkdirSync(this.runtime.tempDir, { recursive: true });
    this.confPath = join(stateDir, 'nginx', 'nginx.conf');
    // The gateway pod's sidecar and `up` share the upstream rendering and the reload.
    this.reloader = new NginxReloader({
      upstreamsFile: this.runtime.upstreamsFile!,
      master: () => (this.proc?.running ? this.proc.pid : undefined),
      check: { nginx, conf: this.confPath, prefix: join(stateDir, 'nginx') },
    });
  }

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  private args(conf: string): string[] {
    return ['-p', join(this.stateDir, 'nginx'), '-e', this.runtime.errorLog, '-c', conf];
  }

  /** The main conf, written only if `nginx -t` accepts it, so a bad render never replaces a good one. */
  private writeConf(cluster: RealtimeCluster): boolean {
    const text = renderNginxConf(cluster, [], this.runtime);
    if (text === this.lastConf) return false;
    const next = `${this.confPath}.next`;
    writeFileSync(next, text);
    const t = spawnSync(this.nginx, ['-t', '-q', ...this.args(next)], { encoding: 'utf8' });
    if (t.status !== 0)
      throw new Error(`nginx rejected the rendered config: ${(t.stderr || t.stdout).trim()}`);
    renameSync(next, this.confPath);
    this.lastConf = text;
    return true;
  }

  private upstreams(cluster: RealtimeCluster, endpoints: Endpoint[]): string {
    const balance = cluster.spec.gateway.balance;
    if (balance !== 'ip-hash') this.leaving = undefined;
    else this.leaving ??= new LeavingServers(leavingGraceSeconds(cluster) * 1000);
    const listed = this.leaving ? this.leaving.withLeaving(endpoints, Date.now()) : endpoints;
    return renderUpstreamBlock(balance, listed);
  }

  async start(cluster: RealtimeCluster, upstreams: Endpoint[]): Promise<void> {
    // The upstream file first: nginx -t of the main conf reads it through its include.
    await this.reloader.apply(this.upstreams(cluster, upstreams));
    this.writeConf(cluster);
    this.hadNoUpstreams = upstreams.length === 0;
    const proc = new Supervised(
      'gateway',
      this.nginx,
      [...this.args(this.confPath), '-g', 'daemon off;'],
      {
        logFile: join(this.stateDir, 'logs', 'nginx.log'),
      },
    );
    this.proc = proc;
    await waitFor(
      `nginx on port ${this.port} (see ${this.runtime.errorLog})`,
      () => canConnect(this.port),
      20_000,
      () => proc.running,
    );
  }

  /**
   * Re-renders for the current upstreams and reloads gracefully: old workers finish their
   * connections. Resolves once new workers run the new config and the old ones stopped
   * accepting, so a caller that reports "ready" or retires a server next does not race nginx's
   * asynchronous reload.
   */
  async reload(cluster: RealtimeCluster, upstreams: Endpoint[]): Promise<void> {
    const confChanged = this.writeConf(cluster);
    await this.reloader.apply(this.upstreams(cluster, upstreams), confChanged);
    if (upstreams.length > 0 && this.hadNoUpstreams && this.pid !== undefined) {
      // From no server to some: wait until a handshake really gets through.
      await waitFor(`nginx on port ${this.port} to proxy`, () => handshakeOk(this.port), 10_000);
    }
    this.hadNoUpstreams = upstreams.length === 0;
  }

  async stop(): Promise<void> {
    // Everything behind it is going away too, so a fast shutdown (SIGTERM) is right here.
    await this.proc?.stop(5000);
  }
}

async function handshakeOk(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`, {
      signal: AbortSignal.timeout(2000),
    });
    await res.body?.cancel();
    return res.status !== 503;
  } catch {
    return false;
  }
}
