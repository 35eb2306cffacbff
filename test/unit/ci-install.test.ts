// .ci/install-debian.sh on a "fresh machine": a PATH where redis-server, nginx, curl and openssl
// are missing and apt-get is a stand-in that records what it was asked and whether a package's
// maintainer script would have been allowed to start its service. The real apt-get cannot run
// here (root, network); the script's own logic is what is under test.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, '.ci', 'install-debian.sh');

function which(cmd: string): string {
  return execFileSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
}

/** A bin dir with only the tools the script may use, plus recording stand-ins. */
function fakeMachine(present: string[] = []): { dir: string; bin: string; policy: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sf-ci-install-'));
  const bin = join(dir, 'bin');
  execFileSync('mkdir', [bin]);
  for (const tool of ['bash', 'chmod', 'rm']) symlinkSync(which(tool), join(bin, tool));
  const record = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!${which('bash')}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  // A service start as invoke-rc.d would do it: ask policy-rc.d first (101 = forbidden).
  record(
    'apt-get',
    `echo "apt-get $*" >>"${dir}/calls"
if [ "$1" = install ]; then
  if [ -x "$SOCKETFLEET_POLICY_RC_D" ]; then "$SOCKETFLEET_POLICY_RC_D" redis-server start; echo "policy=$?" >>"${dir}/calls"; else echo "policy=none" >>"${dir}/calls"; fi
fi`,
  );
  for (const killer of ['pkill', 'killall', 'kill'])
    record(killer, `echo "${killer} $*" >>"${dir}/calls"`);
  for (const p of present) record(p, 'exit 0');
  return { dir, bin, policy: join(dir, 'policy-rc.d') };
}

function run(m: { dir: string; bin: string; policy: string }): string {
  const r = spawnSync(join(m.bin, 'bash'), [SCRIPT], {
    env: { PATH: m.bin, SOCKETFLEET_POLICY_RC_D: m.policy },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return existsSync(join(m.dir, 'calls')) ? readFileSync(join(m.dir, 'calls'), 'utf8') : '';
}

describe('.ci/install-debian.sh', () => {
  it('installs what is missing with service starts forbidden, then removes its policy-rc.d and kills nothing', () => {
    const m = fakeMachine();
    const calls = run(m);
    expect(calls).toContain(
      'apt-get install -y -qq redis-server nginx curl openssl buildah mmdebstrap runc containerd',
    );
    expect(calls).toContain('policy=101');
    expect(calls).not.toMatch(/^(pkill|killall|kill) /m);
    expect(existsSync(m.policy)).toBe(false);
  });

  it("leaves an existing policy-rc.d (the admin's) in place", () => {
    const m = fakeMachine();
    writeFileSync(m.policy, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const calls = run(m);
    expect(calls).toContain('policy=0');
    expect(readFileSync(m.policy, 'utf8')).toBe('#!/bin/sh\nexit 0\n');
  });

  it('does nothing when every tool is installed', () => {
    const m = fakeMachine([
      'redis-server',
      'nginx',
      'curl',
      'openssl',
      'buildah',
      'mmdebstrap',
      'runc',
      'containerd',
    ]);
    expect(run(m)).toBe('');
  });

  it('no CI script stops processes by name', () => {
    for (const f of ['run', 'install-debian.sh']) {
      const text = readFileSync(join(ROOT, '.ci', f), 'utf8')
        .split('\n')
        .filter((l) => !l.trimStart().startsWith('#'))
        .join('\n');
      expect(text, `.ci/${f}`).not.toMatch(/\b(pkill|killall)\b/);
    }
  });
});
