import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { until } from '../dataplane/support/fleet.js';

const run = promisify(execFile);

/** One `ctr run` option list: a bind or tmpfs mount in ctr's own syntax. */
export function bindMount(src: string, dst: string): string[] {
  return ['--mount', `type=bind,src=${src},dst=${dst},options=rbind:ro`];
}
export function tmpfsMount(dst: string): string[] {
  return ['--mount', `type=tmpfs,src=tmpfs,dst=${dst},options=nosuid:nodev:mode=1777`];
}

/**
 * A containerd of the test's own (root, state and socket in its temp dir, no CRI plugin), so
 * the images import and run exactly as a node's containerd would run them, without touching the
 * machine's containerd. Containers run with runc's defaults: no capabilities beyond Docker's
 * default set, the image's USER, and here always a read-only root filesystem.
 */
export class Containerd {
  readonly socket: string;
  private readonly daemon: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly tasks = new Set<string>();

  private constructor(private readonly dir: string) {
    this.socket = join(dir, 'containerd.sock');
    const config = join(dir, 'config.toml');
    writeFileSync(
      config,
      [
        'version = 2',
        `root = "${join(dir, 'root')}"`,
        `state = "${join(dir, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = "${this.socket}"`,
        '',
      ].join('\n'),
    );
    this.daemon = spawn('containerd', ['--config', config], { stdio: 'ignore' });
    this.exited = new Promise((resolve) => this.daemon.once('exit', () => resolve()));
  }

  static async start(dir: string): Promise<Containerd> {
    mkdirSync(dir, { recursive: true });
    const c = new Containerd(dir);
    await until('containerd to answer', async () => (await c.ctr('version')).length > 0, 30_000);
    return c;
  }

  async ctr(...args: string[]): Promise<string> {
    const { stdout } = await run(
      'ctr',
      ['--address', this.socket, '--namespace', 'k8s.io', ...args],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return stdout;
  }

  /** Runs a container to completion and returns its stdout; a non-zero exit rejects. */
  async runOnce(image: string, options: string[], command: string[] = []): Promise<string> {
    const id = `once-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    return this.ctr('run', '--rm', '--read-only', ...options, image, id, ...command);
  }

  /** Starts a detached container on the host network; stop() kills it. */
  async runDetached(
    image: string,
    id: string,
    options: string[],
    command: string[] = [],
  ): Promise<void> {
    this.tasks.add(id);
    await this.ctr('run', '-d', '--read-only', '--net-host', ...options, image, id, ...command);
  }

  /** Starts a process inside a running container (same PID namespace) and returns it. */
  exec(id: string, command: string[]): ChildProcess {
    const execId = `exec-${Math.random().toString(36).slice(2, 8)}`;
    return spawn(
      'ctr',
      [
        '--address',
        this.socket,
        '--namespace',
        'k8s.io',
        'task',
        'exec',
        '--exec-id',
        execId,
        id,
        ...command,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  }

  async stopAll(): Promise<void> {
    for (const id of this.tasks) {
      // --force kills a running task with SIGKILL and waits for it before deleting it.
      await this.ctr('task', 'delete', '--force', id).catch(() => undefined);
      await this.ctr('container', 'delete', id).catch(() => undefined);
    }
    this.tasks.clear();
  }

  /** Stops every container it started, then the daemon (by its PID), and removes its files. */
  async close(): Promise<void> {
    await this.stopAll();
    this.daemon.kill('SIGTERM');
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.daemon.exitCode === null && this.daemon.signalCode === null) {
      this.daemon.kill('SIGKILL');
      await this.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
