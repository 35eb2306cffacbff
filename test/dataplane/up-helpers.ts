import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'socketfleet.js');

export interface UpStatus {
  name: string;
  url: string | undefined;
  redis: { index: number; ordinal: number; pid: number; port: number }[];
  servers: { id: number; pid: number; port: number; opsPort: number }[];
  gateway: { pid: number; port: number } | undefined;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => res(a.port));
    });
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Live processes whose process group is one of `groups` (nginx workers, an entrypoint's node). */
export function groupMembers(groups: number[]): number[] {
  const want = new Set(groups);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is the state; a zombie is already dead and only waits for its parent.
      if (fields[0] !== 'Z' && want.has(Number(fields[2]))) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

export async function until<T>(
  what: string,
  f: () => T | undefined | false,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A `socketfleet up` child process on a copy of examples/local.yaml in a temp dir. */
export class UpProcess {
  readonly dir = mkdtempSync(join(tmpdir(), 'sf-up-'));
  readonly file = join(this.dir, 'cluster.yaml');
  readonly stateDir = join(this.dir, 'state');
  child: ChildProcess | undefined;
  output = '';
  exitCode: number | null | undefined;
  /** Every pid seen in status.json, so cleanup and the leak check cover replaced processes too. */
  readonly seenPids = new Set<number>();
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly port: number) {}

  writeSpec(edit: (spec: Record<string, unknown>) => void): void {
    const doc = parse(readFileSync(join(ROOT, 'examples', 'local.yaml'), 'utf8')) as {
      spec: Record<string, unknown>;
    };
    edit(doc.spec);
    writeFileSync(this.file, stringify(doc));
  }

  /** Where the output of the latest start() begins (a test may start up again when it ended). */
  private outputFrom = 0;

  start(): void {
    this.exitCode = undefined;
    this.outputFrom = this.output.length;
    const child = spawn(
      process.execPath,
      [CLI, 'up', '-f', this.file, '--port', String(this.port), '--state-dir', this.stateDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    child.stdout.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((r) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        r();
      }),
    );
  }

  status(): UpStatus | undefined {
    const p = join(this.stateDir, 'status.json');
    if (!existsSync(p)) return undefined;
    try {
      const s = JSON.parse(readFileSync(p, 'utf8')) as UpStatus;
      if (!Array.isArray(s.servers)) return undefined;
      for (const x of [...s.redis, ...s.servers, ...(s.gateway ? [s.gateway] : [])])
        this.seenPids.add(x.pid);
      return s;
    } catch {
      return undefined;
    }
  }

  password(): string {
    return readFileSync(join(this.stateDir, 'redis.password'), 'utf8').trim();
  }

  async waitReady(timeoutMs = 90_000): Promise<UpStatus> {
    await until(
      `up to print its URL; output so far:\n${this.output}`,
      () => this.output.includes('Socket.IO URL:', this.outputFrom) || this.exitCode !== undefined,
      timeoutMs,
    );
    if (this.exitCode !== undefined)
      throw new Error(`up exited with ${this.exitCode}:\n${this.output}`);
    return until('status.json', () => this.status());
  }

  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = 60_000,
  ): Promise<number | null | undefined> {
    if (this.child && this.exitCode === undefined) {
      this.child.kill(signal);
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, timeoutMs))]);
    }
    return this.exitCode;
  }

  /** Cleanup for afterAll: whatever happened, no process of ours survives. */
  async destroy(): Promise<void> {
    this.status();
    await this.stop('SIGTERM', 30_000);
    if (this.exitCode === undefined) this.child?.kill('SIGKILL');
    for (const pid of this.seenPids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
