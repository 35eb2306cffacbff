import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { emergMessage } from './nginx-errors.js';

export interface ReloaderOptions {
  /** The file nginx.conf includes; rewritten atomically. */
  upstreamsFile: string;
  /** The nginx master's pid: a number, or the pid file nginx writes. */
  master: () => number | undefined;
  /**
   * nginx binary and main conf for `nginx -t` before each reload, where the binary is at hand
   * (`up`, tests). In the pod, nginx runs in the other container: there the master itself
   * checks the new conf on SIGHUP and keeps the old one when it is invalid, which shows as its
   * emerg message on `errors` (or, failing that, as no new workers); the file is then restored.
   */
  check?: { nginx: string; conf: string; prefix?: string };
  /** How long to wait for the new workers (default 10 s). */
  timeoutMs?: number;
  /**
   * nginx's emerg messages as they arrive (the pod's syslog listener): a refusal then fails the
   * reload at once with nginx's words instead of after the timeout with none.
   */
  errors?: { since: (t: number) => string | undefined };
  /** Told every outcome that reached nginx, for the sidecar's metrics. */
  status?: ReloadOutcomes;
}

export interface ReloadOutcomes {
  reloaded: () => void;
  rejected: (message: string) => void;
}

/**
 * nginx refused the new configuration and runs the previous one; the previous upstreams were put
 * back. `nginxMessage` is nginx's own error, when it was heard.
 */
export class ReloadRejectedError extends Error {
  constructor(
    message: string,
    readonly nginxMessage: string | undefined,
  ) {
    super(message);
    this.name = 'ReloadRejectedError';
  }
}

export type ReloadResult = 'unchanged' | 'reloaded' | 'written';

/**
 * Reads nginx's pid file; undefined while nginx has not written it yet, and when the pid is no
 * longer an nginx master. A master killed outright leaves its pid file behind, and the pid is
 * soon another process's: a SIGHUP sent there would kill that process instead of reloading.
 */
export function pidFromFile(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('nginx: master')
      ? pid
      : undefined;
  } catch {
    return undefined;
  }
}

/** Children of a process, from /proc (the gateway pod shares one process namespace). */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid)
        out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** An old worker that neither exited nor started its graceful shutdown (its title says so). */
function stillAccepting(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('shutting down');
  } catch {
    return false;
  }
}

/**
 * Puts a new upstream block in place and reloads nginx gracefully (SIGHUP to the master): new
 * workers take new connections at once, old workers finish what they hold, bounded by
 * worker_shutdown_timeout. Resolves once new workers run, so a caller that retires a server
 * next does not race the asynchronous reload. Used by the gateway pod's sync sidecar and by
 * `socketfleet up`, so both paths are the same code.
 */
export class NginxReloader {
  private current: string | undefined;

  constructor(private readonly opts: ReloaderOptions) {
    if (existsSync(opts.upstreamsFile)) this.current = readFileSync(opts.upstreamsFile, 'utf8');
  }

  /**
   * Writes `text` if it differs from what nginx runs, then reloads a running nginx. `force`
   * reloads even when the block is the same (the main conf around it changed).
   */
  async apply(text: string, force = false): Promise<ReloadResult> {
    try {
      const result = await this.applyOnce(text, force);
      if (result === 'reloaded') this.opts.status?.reloaded();
      return result;
    } catch (err) {
      if (err instanceof ReloadRejectedError) {
        this.opts.status?.rejected(err.nginxMessage ?? err.message);
      }
      throw err;
    }
  }

  private async applyOnce(text: string, force: boolean): Promise<ReloadResult> {
    if (text === this.current && !force) return 'unchanged';
    const previous = this.current;
    this.write(text);
    const check = this.opts.check;
    // Before the main conf exists there is nothing to test the block in; it is tested with it.
    if (check && existsSync(check.conf)) {
      const prefix = check.prefix ? ['-p', check.prefix] : [];
      const t = spawnSync(check.nginx, ['-t', '-q', ...prefix, '-c', check.conf], {
        encoding: 'utf8',
      });
      if (t.status !== 0) {
        this.restore(previous);
        const out = (t.stderr || t.stdout).trim();
        throw new ReloadRejectedError(`nginx -t rejected the upstreams: ${out}`, emergMessage(out));
      }
    }
    const master = this.opts.master();
    // No nginx yet: it reads the file when it starts.
    if (master === undefined) return 'written';
    const before = new Set(childrenOf(master));
    const sentAt = Date.now();
    process.kill(master, 'SIGHUP');
    const deadline = sentAt + (this.opts.timeoutMs ?? 10_000);
    while (Date.now() < deadline) {
      const started = childrenOf(master).some((pid) => !before.has(pid));
      const refused = started ? undefined : this.opts.errors?.since(sentAt);
      if (refused !== undefined) {
        this.restore(previous);
        throw new ReloadRejectedError(
          `nginx (pid ${master}) refused the new configuration and keeps the previous one: ${refused}`,
          refused,
        );
      }
      if (started) {
        // New workers run; the old ones close their listeners once the master tells them to.
        // Until then they may still accept a connection with the old upstreams.
        while (Date.now() < deadline && [...before].some(stillAccepting)) {
          await new Promise((r) => setTimeout(r, 10));
        }
        return 'reloaded';
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.restore(previous);
    throw new ReloadRejectedError(
      `nginx (pid ${master}) started no new workers within ${this.opts.timeoutMs ?? 10_000} ms of SIGHUP; it kept its previous configuration (see its error log), and the previous upstreams were put back.`,
      undefined,
    );
  }

  /**
   * Reloads nginx with what it already has, so it reads files it only reads at a reload (a
   * renewed TLS certificate). Before the first upstream block nginx is not running yet.
   */
  async reload(): Promise<ReloadResult> {
    if (this.current === undefined) return 'unchanged';
    return this.apply(this.current, true);
  }

  private write(text: string): void {
    const next = `${this.opts.upstreamsFile}.next`;
    writeFileSync(next, text);
    renameSync(next, this.opts.upstreamsFile);
    this.current = text;
  }

  private restore(previous: string | undefined): void {
    if (previous !== undefined) this.write(previous);
    else this.current = undefined;
  }
}
