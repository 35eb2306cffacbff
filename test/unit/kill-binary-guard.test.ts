// procps-ng 4.0.x's kill binary (Debian 12's /usr/bin/kill) reads only the first digit of a
// negative pid: `kill -9 -12345` runs kill(-1, SIGKILL) and, as root, kills every process on the
// machine (a CI run died of it at 678 s). Process groups are signalled with process.kill(-pid)
// or bash's builtin kill; nothing in the project may run the binary.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const RUNS_KILL_BINARY = [
  // spawn('kill', ...), execFileSync('/usr/bin/kill', ...), exec('kill -9 ...')
  /\b(?:spawn|spawnSync|execFile|execFileSync)\(\s*['"`](?:\/usr)?(?:\/bin\/)?kill['"`]/,
  /\bexec(?:Sync)?\(\s*['"`](?:\/usr)?(?:\/bin\/)?kill\s/,
  // In shell, bash's kill is a builtin unless something execs the binary for it.
  /(?:\/usr)?\/bin\/kill\b|\b(?:xargs|env|timeout|nsenter|command)\b[^|;&\n]*\bkill\s+-/,
];

const runsKillBinary = (text: string): boolean => RUNS_KILL_BINARY.some((re) => re.test(text));

describe('the kill binary', () => {
  it('is recognised when a line would run it', () => {
    expect(runsKillBinary("spawn('kill', ['-9', `-${pid}`]);")).toBe(true);
    expect(runsKillBinary("execSync('kill -9 -' + pid)")).toBe(true);
    expect(runsKillBinary('echo "$pids" | xargs -r kill -KILL')).toBe(true);
    expect(runsKillBinary("process.kill(-pid, 'SIGKILL');")).toBe(false);
    expect(runsKillBinary('kill -KILL "$pid" 2>/dev/null')).toBe(false);
  });

  it('is run by no file of the project', () => {
    const files = execFileSync('git', ['ls-files', '*.ts', '*.mjs', '*.js', '*.sh', '.ci/*'], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter((f) => f && !f.endsWith('kill-binary-guard.test.ts'));
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) => (runsKillBinary(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(offenders).toEqual([]);
  });
});
