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
    if (readlinkSync(`/proc/${pid}/cwd`).startsWith(stateDir)) return true;
  } catch {
    return false;
  }
  for (const f of ['cmdline', 'environ']) {
    try {
      if (readFileSync(`/proc/${pid}/${f}`).toString('utf8').includes(stateDir)) return true;
    } catch {
      return false;
    }
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
