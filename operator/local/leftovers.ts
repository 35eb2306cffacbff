import { existsSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * A previous `up` that was SIGKILLed could not stop its children. Its status file lists their
 * process groups; kill those whose working dir, command line or environment still points into our state
 * dir, so a recycled pid is never touched.
 */
export function killLeftovers(statusPath: string, stateDir: string): number {
  if (!existsSync(statusPath)) return 0;
  let pids: number[] = [];
  try {
    const s = JSON.parse(readFileSync(statusPath, 'utf8')) as {
      redis?: { pid: number }[];
      servers?: { pid: number }[];
      gateway?: { pid: number };
    };
    pids = [...(s.redis ?? []), ...(s.servers ?? []), ...(s.gateway ? [s.gateway] : [])].map(
      (p) => p.pid,
    );
  } catch {
    return 0;
  }
  let killed = 0;
  for (const pid of pids) {
    if (!ownedBy(pid, stateDir)) continue;
    try {
      process.kill(-pid, 'SIGKILL');
      killed++;
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}

function ownedBy(pid: number, stateDir: string): boolean {
  try {
    // redis-server rewrites its command line but works inside its data dir under stateDir.
    if (isUnder(readlinkSync(`/proc/${pid}/cwd`), stateDir)) return true;
  } catch {
    return false;
  }
  for (const f of ['cmdline', 'environ']) {
    try {
      const entries = readFileSync(`/proc/${pid}/${f}`).toString('utf8').split('\0');
      if (entries.some((e) => mentions(e, stateDir))) return true;
    } catch {
      return false;
    }
  }
  return false;
}

/** `path` is `dir` itself or inside it: `demo` owns `demo/logs`, never `demo-2`. */
export function isUnder(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return path === d || path.startsWith(`${d}/`);
}

/**
 * One argument or environment entry names `dir` or a path inside it as a whole path, e.g.
 * `/s/demo`, `--dir=/s/demo/x` or `CONF=/s/demo/nginx.conf`, but not `/s/demo-2`.
 */
export function mentions(entry: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  for (let i = entry.indexOf(d); i !== -1; i = entry.indexOf(d, i + 1)) {
    const before = i === 0 ? '' : entry[i - 1]!;
    const after = entry[i + d.length] ?? '';
    if (!/^[=:\s"',]?$/.test(before)) continue;
    if (after === '' || after === '/' || /[:\s"',;]/.test(after)) return true;
  }
  return false;
}

/** The pid of a live process that still runs the cluster of this status file, if any. */
export function runningSupervisor(statusPath: string): number | undefined {
  if (!existsSync(statusPath)) return undefined;
  try {
    const pid = (JSON.parse(readFileSync(statusPath, 'utf8')) as { supervisorPid?: number })
      .supervisorPid;
    if (pid === undefined || pid === process.pid) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`).toString('utf8');
    return /socketfleet|compare|capacity/.test(cmdline) ? pid : undefined;
  } catch {
    return undefined;
  }
}
