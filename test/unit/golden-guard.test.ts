// UPDATE_GOLDEN=1 under CI must fail the golden suite instead of rewriting expectations. Runs the
// real golden suite in a child vitest (about 3 s) with a private JSON report, so the parent run's
// .vitest-results.json (what .ci/run counts) is untouched.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

it(
  'the golden suite refuses UPDATE_GOLDEN=1 when CI is set and leaves the expectations alone',
  { timeout: 60_000 },
  () => {
    const expected = join(ROOT, 'test', 'golden', 'minimal', 'expected.yaml');
    // An update rewrites every expected.yaml (even unchanged), so its mtime shows any write.
    const before = statSync(expected).mtimeMs;
    const report = join(mkdtempSync(join(tmpdir(), 'sf-golden-')), 'report.json');
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
        '--project',
        'unit',
        'test/golden',
        '--reporter=default',
        `--outputFile.json=${report}`,
      ],
      { cwd: ROOT, env: { ...process.env, CI: 'true', UPDATE_GOLDEN: '1' }, encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(
      'UPDATE_GOLDEN=1 is refused when CI is set: regenerate goldens on purpose on a developer machine and commit the diff.',
    );
    expect(statSync(expected).mtimeMs).toBe(before);
  },
);
