import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { renderNginxConf, type NginxRuntime } from '../desired/nginx.js';
import type { Endpoint } from '../desired/types.js';
import { canConnect, waitFor } from './ports.js';
import { Supervised } from './process.js';

/** The operator's nginx.conf, pointed at files under the state dir instead of the pod's paths. */
export function localNginxRuntime(
  stateDir: string,
  listenPort: number,
  workerProcesses: number | 'auto' = 'auto',
): NginxRuntime {
  const dir = join(stateDir, 'nginx');
  return {
    listenPort,
    pidFile: join(dir, 'nginx.pid'),
    errorLog: join(stateDir, 'logs', 'nginx-error.log'),
    accessLog: 'off',
    tempDir: join(dir, 'tmp'),
    workerProcesses,
    // As root nginx would drop its workers to nobody, who cannot read a state dir under /root.
    ...(process.getuid?.() === 0 ? { runAsUser: 'root' } : {}),
  };
}

export class Gateway {
  private proc: Supervised | undefined;
  private readonly confPath: string;
  private readonly runtime: NginxRuntime;

  constructor(
    private readonly nginx: string,
    private readonly stateDir: string,
    readonly port: number,
    workerProcesses: number | 'auto' = 'auto',
  ) {
    this.runtime = localNginxRuntime(stateDir, port, workerProcesses);
    mkdirSync(this.runtime.tempDir, { recursive: true });
    this.confPath = join(stateDir, 'nginx', 'nginx.conf');
  }

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  private args(conf: string): string[] {
    return ['-p', join(this.stateDir, 'nginx'), '-e', this.runtime.errorLog, '-c', conf];
  }

  /** Writes the config only if `nginx -t` accepts it, so a bad render never replaces a good one. */
  private writeChecked(cluster: RealtimeCluster, upstreams: Endpoint[]): void {
    const text = renderNginxConf(cluster, upstreams, this.runtime);
    const next = `${this.confPath}.next`;
    writeFileSync(next, text);
    const t = spawnSync(this.nginx, ['-t', '-q', ...this.args(next)], { encoding: 'utf8' });
    if (t.status !== 0)
      throw new Error(`nginx rejected the rendered config: ${(t.stderr || t.stdout).trim()}`);
    renameSync(next, this.confPath);
  }

  async start(cluster: RealtimeCluster, upstreams: Endpoint[]): Promise<void> {
    this.writeChecked(cluster, upstreams);
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

  /** Re-renders for the current upstreams and reloads gracefully: old workers finish their connections. */
  reload(cluster: RealtimeCluster, upstreams: Endpoint[]): void {
    this.writeChecked(cluster, upstreams);
    this.proc?.signalLeader('SIGHUP');
  }

  async stop(): Promise<void> {
    // Everything behind it is going away too, so a fast shutdown (SIGTERM) is right here.
    await this.proc?.stop(5000);
  }
}
