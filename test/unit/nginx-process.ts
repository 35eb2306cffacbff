import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NginxRuntime } from '../../operator/desired/nginx.js';

/** Debian's nginx; .ci/run installs it. A missing binary fails the suite rather than skipping it. */
export function nginxBinary(): string {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  throw new Error('nginx is not installed: run apt-get install -y nginx');
}

export const NGINX_PATH_ENV = {
  ...process.env,
  PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`,
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface NginxDir {
  dir: string;
  confPath: string;
  runtime: NginxRuntime;
  cleanup: () => void;
}

export function nginxDir(listenPort: number): NginxDir {
  const dir = mkdtempSync(join(tmpdir(), 'socketfleet-nginx-'));
  return {
    dir,
    confPath: join(dir, 'nginx.conf'),
    runtime: {
      listenPort,
      pidFile: join(dir, 'nginx.pid'),
      errorLog: join(dir, 'error.log'),
      accessLog: 'off',
      tempDir: dir,
      workerProcesses: 1,
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** `nginx -t` on a conf; returns the exit status and what nginx said. */
export function nginxTest(
  confPath: string,
  prefix: string,
): { status: number | null; output: string } {
  const r = spawnSync(
    nginxBinary(),
    ['-t', '-c', confPath, '-p', prefix, '-e', join(prefix, 'test-error.log')],
    {
      encoding: 'utf8',
    },
  );
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export function writeConf(path: string, text: string): void {
  // Write-then-rename, like the kubelet's ConfigMap volume update.
  writeFileSync(`${path}.new`, text);
  spawnSync('mv', ['-f', `${path}.new`, path]);
}

export function startNginx(d: NginxDir): ChildProcess {
  return spawn(
    nginxBinary(),
    ['-c', d.confPath, '-p', d.dir, '-e', d.runtime.errorLog, '-g', 'daemon off;'],
    {
      stdio: 'ignore',
    },
  );
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  seconds = 30,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
  );
}
