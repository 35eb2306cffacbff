// killLeftovers() with real processes: only those that work in, or name, the state dir itself
// (or a path inside it) are killed; a sibling state dir that merely shares the prefix is not.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isUnder, killLeftovers, mentions } from '../../operator/local/leftovers.js';

const base = mkdtempSync(join(tmpdir(), 'sf-leftovers-'));
const demo = join(base, 'demo');
const demo2 = join(base, 'demo-2');
for (const d of [join(demo, 'logs'), join(demo2, 'logs')]) mkdirSync(d, { recursive: true });
const children: ChildProcess[] = [];

function sleeper(opts: { cwd: string; arg?: string; env?: Record<string, string> }): number {
  // sh -c CMD NAME puts NAME in the command line ($0) without changing what runs.
  const c = spawn('sh', ['-c', 'sleep 300', opts.arg ?? 'sf-test'], {
    cwd: opts.cwd,
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env },
  });
  children.push(c);
  return c.pid!;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const exited = (c: ChildProcess): Promise<void> =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => c.once('exit', () => r()));

afterAll(() => {
  // Never through the kill binary: procps-ng 4.0.x reads `kill -9 -12345` as `kill(-1)`.
  for (const c of children) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  rmSync(base, { recursive: true, force: true });
});

describe('leftover processes of a killed `up`', () => {
  it('matches the state dir as a whole path', () => {
    expect(isUnder(demo, demo)).toBe(true);
    expect(isUnder(join(demo, 'logs'), demo)).toBe(true);
    expect(isUnder(demo2, demo)).toBe(false);
    expect(mentions(`--conf=${demo}/nginx.conf`, demo)).toBe(true);
    expect(mentions(`SOCKETFLEET_STATE=${demo}`, demo)).toBe(true);
    expect(mentions(`--conf=${demo2}/nginx.conf`, demo)).toBe(false);
    expect(mentions(`SOCKETFLEET_STATE=${demo2}`, demo)).toBe(false);
  });

  it('kills the processes of `demo` and none of `demo-2`', async () => {
    const ours = [
      sleeper({ cwd: join(demo, 'logs') }),
      sleeper({ cwd: base, arg: `${demo}/nginx.conf` }),
      sleeper({ cwd: base, env: { SF_STATE: demo } }),
    ];
    const theirs = [
      sleeper({ cwd: join(demo2, 'logs') }),
      sleeper({ cwd: demo2 }),
      sleeper({ cwd: base, arg: `${demo2}/nginx.conf` }),
      sleeper({ cwd: base, env: { SF_STATE: demo2 } }),
    ];
    // A status file that (wrongly, e.g. recycled pids) lists every one of them.
    writeFileSync(
      join(demo, 'status.json'),
      JSON.stringify({ servers: [...ours, ...theirs].map((pid, id) => ({ id, pid })) }),
    );
    expect(killLeftovers(join(demo, 'status.json'), demo)).toBe(ours.length);
    await Promise.all(children.slice(0, ours.length).map(exited));
    for (const pid of ours) expect(alive(pid)).toBe(false);
    for (const pid of theirs) expect(alive(pid)).toBe(true);
  });
});
