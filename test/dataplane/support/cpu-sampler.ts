import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/**
 * Samples what each named process spent of the machine's cores, so a slow recovery in a test
 * log says who was busy (a server's event loop, nginx, the client crowd, or something else on
 * the machine) instead of leaving a guess. Linux only; a process that is gone reads as absent.
 */
export class CpuSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly last = new Map<string, number>();
  private lastAt = Date.now();
  private readonly started = Date.now();
  readonly lines: string[] = [];

  constructor(
    private readonly processes: () => Record<string, number | undefined>,
    intervalMs = 500,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const now = Date.now();
    const elapsed = (now - this.lastAt) / 1000;
    const parts: string[] = [];
    let total = 0;
    for (const [name, pid] of Object.entries(this.processes())) {
      if (pid === undefined) continue;
      const ticks = cpuTicks(pid);
      if (ticks === undefined) continue;
      const before = this.last.get(name);
      this.last.set(name, ticks);
      if (before === undefined || elapsed <= 0) continue;
      const share = (ticks - before) / TICKS_PER_SECOND / elapsed;
      total += share;
      parts.push(`${name} ${Math.round(share * 100)}%`);
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    if (parts.length > 0)
      this.lines.push(
        `+${now - this.started} ms: ${parts.join(', ')} (sum ${Math.round(total * 100)}%, load ${load})`,
      );
    this.lastAt = now;
  }

  stop(): string[] {
    clearInterval(this.timer);
    this.sample();
    return this.lines;
  }
}

/** The worker processes of an nginx master, whose pid file names only the master. */
export function nginxWorkers(pidFile: string): number[] {
  try {
    const master = Number(readFileSync(pidFile, 'utf8').trim());
    return readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
      .trim()
      .split(' ')
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}
