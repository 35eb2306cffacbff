import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

/**
 * A child process in its own process group (detached = setsid), so stopping it also stops
 * whatever it started (an entrypoint's node, nginx workers), and a Ctrl-C in the terminal
 * reaches only `up`, which then stops its children in order.
 */
export class Supervised {
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
  ) {
    const fd = openSync(opts.logFile, 'a');
    try {
      this.child = spawn(command, args, {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: opts.env ?? process.env,
        cwd: opts.cwd,
      });
    } finally {
      closeSync(fd);
    }
    if (this.child.pid === undefined)
      throw new Error(`Could not start ${name} (${command}); check that it is installed.`);
    this.pid = this.child.pid;
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : null);
        live.delete(this);
        resolve(this.exitCode);
      });
      this.child.once('error', () => {
        this.exitCode = 127;
        live.delete(this);
        resolve(127);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  wait(): Promise<number | null> {
    return this.exited;
  }

  signal(sig: NodeJS.Signals): void {
    signalGroup(this.pid, sig);
  }

  /** Only the leader: nginx's master reloads on SIGHUP and must not forward it to its workers. */
  signalLeader(sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM the group, then SIGKILL it if it has not exited within graceMs. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) {
      signalGroup(this.pid, 'SIGKILL');
      return;
    }
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
    // The leader may exit before its children (an entrypoint shell); take the group down too.
    signalGroup(this.pid, 'SIGKILL');
  }
}

const live = new Set<Supervised>();

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // The group is already gone.
  }
}

/** Last resort on exit: synchronous, so it also runs from process.on('exit'). */
export function killAllSupervised(): void {
  for (const p of live) signalGroup(p.pid, 'SIGKILL');
}

export function supervisedPids(): number[] {
  return [...live].map((p) => p.pid);
}
