import { readFileSync, readdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { RedisTarget } from './options.js';

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux build we run on. */
const CLK_TCK = 100;

export interface ProcSample {
  cpuSeconds: number;
  /** The part of cpuSeconds spent in the kernel: socket writes and reads, the TCP stack. */
  systemSeconds: number;
  rssBytes: number;
  processes: number;
}

function readStat(
  pid: number,
): { ppid: number; cpuTicks: number; systemTicks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses, so split after its last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of proc(5).
    const systemTicks = Number(fields[12]);
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + systemTicks, systemTicks };
  } catch {
    return undefined;
  }
}

function readRss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The given pids and all their descendants: an entrypoint script may run node as a child. */
export function processTree(pids: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  const out = new Set<number>();
  const queue = [...pids];
  while (queue.length > 0) {
    const p = queue.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    queue.push(...(children.get(p) ?? []));
  }
  return [...out];
}

export function sampleProcesses(pids: number[]): ProcSample {
  let ticks = 0;
  let systemTicks = 0;
  let rss = 0;
  let n = 0;
  for (const pid of processTree(pids)) {
    const st = readStat(pid);
    if (!st) continue;
    ticks += st.cpuTicks;
    systemTicks += st.systemTicks;
    rss += readRss(pid);
    n++;
  }
  return {
    cpuSeconds: ticks / CLK_TCK,
    systemSeconds: systemTicks / CLK_TCK,
    rssBytes: rss,
    processes: n,
  };
}

/** Reads process CPU (total and system) and resident memory from Prometheus endpoints. */
export async function scrapeMetrics(urls: string[]): Promise<ProcSample> {
  let cpu = 0;
  let system = 0;
  let rss = 0;
  let n = 0;
  await Promise.all(
    urls.map(async (url) => {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok)
        throw new Error(`GET ${url} answered ${res.status}; pass a server's /metrics URL.`);
      const text = await res.text();
      cpu += metricValue(text, 'process_cpu_seconds_total');
      system += metricValue(text, 'process_cpu_system_seconds_total');
      rss += metricValue(text, 'process_resident_memory_bytes');
      n++;
    }),
  );
  return { cpuSeconds: cpu, systemSeconds: system, rssBytes: rss, processes: n };
}

export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.eE+-]+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export interface RedisSample {
  netBytes: number;
  shards: number;
}

export class RedisSampler {
  private readonly clients: Redis[];

  constructor(targets: RedisTarget[], password: string | undefined, username?: string) {
    this.clients = targets.map(
      (t) =>
        new Redis({
          host: t.host,
          port: t.port,
          ...(password ? { password } : {}),
          ...(username ? { username } : {}),
          lazyConnect: true,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: true,
          retryStrategy: () => null,
        }),
    );
    // Errors surface from sample(); without a listener ioredis prints them as unhandled.
    for (const c of this.clients) c.on('error', () => undefined);
  }

  async sample(): Promise<RedisSample> {
    let bytes = 0;
    for (const c of this.clients) {
      let info: string;
      try {
        info = await c.info('stats');
      } catch (err) {
        const where = `${c.options.host ?? ''}:${c.options.port ?? ''}`;
        if (/NOAUTH|WRONGPASS/.test((err as Error).message)) {
          throw new Error(
            `Redis at ${where} needs a password; set BENCH_REDIS_PASSWORD (and BENCH_REDIS_USERNAME for an ACL user; socketfleet up's servers log in as socketfleet-server with the password in <state-dir>/redis.password).`,
          );
        }
        throw new Error(`Cannot read INFO from Redis at ${where}: ${(err as Error).message}`);
      }
      bytes +=
        infoNumber(info, 'total_net_input_bytes') + infoNumber(info, 'total_net_output_bytes');
    }
    return { netBytes: bytes, shards: this.clients.length };
  }

  close(): void {
    for (const c of this.clients) c.disconnect();
  }
}

export function infoNumber(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

/** Busy and total jiffies of all cores (the first line of /proc/stat): the whole machine. */
export function machineCpu(): { busy: number; total: number; cores: number } {
  const text = readFileSync('/proc/stat', 'utf8');
  const fields = text.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const cores = text.split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  return { busy: total - idle, total, cores };
}

export function memInfo(): { totalBytes: number; availableBytes: number } {
  const text = readFileSync('/proc/meminfo', 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') };
}

/** Kernel memory held by all TCP sockets (sockstat counts pages). */
export function tcpKernelBytes(): number {
  try {
    const m = /^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) * 4096 : 0;
  } catch {
    return 0;
  }
}

/** The most open file descriptors held by any one process of these pids and their children. */
export function maxOpenFiles(pids: number[]): number {
  let max = 0;
  for (const pid of processTree(pids)) {
    try {
      max = Math.max(max, readdirSync(`/proc/${pid}/fd`).length);
    } catch {
      // gone
    }
  }
  return max;
}

/** This process's hard limit on open files (children inherit it). */
export function openFilesHardLimit(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
}
