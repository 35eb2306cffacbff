// `npm test`: the static checks, then every vitest project, in as little wall time as two cores
// allow without making the timed tests noisy.
//  1. format, typecheck, lint and build run side by side (each is one busy process);
//  2. two lanes run at once: the data-plane project (real processes, most of the CPU) in one, and
//     the unit, e2e (a kwok control plane, mostly waiting on it) and real-node projects in the
//     other;
//  3. the files in SOLO, whose assertions are about time under load (reconnect rates, seconds to
//     recover), run last, alone.
// Each run writes its JSON report into .vitest-lanes/; they are merged into .vitest-results.json,
// which .ci/run counts. Extra arguments go to every vitest run (e.g. --bail=1).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const SOLO = ['test/dataplane/rollout.test.ts'];
const CHECKS = ['format:check', 'typecheck', 'lint', 'build'];
const REPORTS = '.vitest-lanes';
const RESULTS = '.vitest-results.json';
const extra = process.argv.slice(2);

/**
 * Runs a command; its output goes to ours as it comes, or, with `logFile`, to that file (so a
 * run cut short still shows how far it got), returned when the command ends.
 */
function run(cmd, args, logFile) {
  const started = Date.now();
  return new Promise((resolve) => {
    const out = logFile ? openSync(logFile, 'w') : undefined;
    const stdio = out === undefined ? 'inherit' : ['ignore', out, out];
    const child = spawn(cmd, args, { stdio });
    child.on('close', (code, signal) => {
      if (out !== undefined) closeSync(out);
      resolve({
        code: code ?? 1,
        signal,
        out: logFile ? readFileSync(logFile, 'utf8') : '',
        s: Math.round((Date.now() - started) / 1000),
      });
    });
  });
}

function vitest(name, args, shown) {
  const json = `${REPORTS}/${name}.json`;
  const log = shown ? undefined : `${REPORTS}/${name}.log`;
  return run('npx', ['vitest', 'run', ...args, `--outputFile.json=${json}`, ...extra], log).then(
    (r) => ({ ...r, name, json }),
  );
}

function banner(line) {
  console.log(`\n::: ${line}`);
}

banner(`checks: ${CHECKS.join(', ')} (side by side)`);
mkdirSync(REPORTS, { recursive: true });
// No report of an earlier run may be counted for this one, whichever step stops it.
for (const name of ['dataplane', 'others', 'solo', 'rerun']) {
  rmSync(`${REPORTS}/${name}.json`, { force: true });
}
rmSync(RESULTS, { force: true });
const checks = await Promise.all(
  CHECKS.map((c) => run('npm', ['run', '--silent', c], `${REPORTS}/${c.replace(':', '-')}.log`)),
);
let failed = false;
checks.forEach((r, i) => {
  banner(`${CHECKS[i]}: exit ${r.code} after ${r.s}s`);
  if (r.out.trim()) process.stdout.write(r.out);
  if (r.code !== 0) failed = true;
});
if (failed) {
  banner('a check failed; the tests did not run');
  process.exit(1);
}

const exclude = SOLO.flatMap((f) => ['--exclude', f]);
banner(
  `lanes: dataplane (shown live) beside unit, e2e and node (in ${REPORTS}/others.log, shown when done)`,
);
const lanes = await Promise.all([
  vitest('dataplane', ['--project', 'dataplane', ...exclude], true),
  vitest('others', ['--project', 'unit', '--project', 'e2e', '--project', 'node'], false),
]);
banner(`lane unit, e2e and node: exit ${lanes[1].code} after ${lanes[1].s}s`);
process.stdout.write(lanes[1].out);
banner(`lane dataplane: exit ${lanes[0].code} after ${lanes[0].s}s`);
banner(`alone: ${SOLO.join(', ')}`);
const solo = await vitest('solo', SOLO, true);
banner(`alone: exit ${solo.code} after ${solo.s}s`);

// One report in vitest's JSON shape: the counts summed, the files concatenated.
const runs = [...lanes, solo];
const merged = {
  numPassedTests: 0,
  numFailedTests: 0,
  numPendingTests: 0,
  numTodoTests: 0,
  numTotalTests: 0,
  success: true,
  testResults: [],
};
let unexplained = false;
for (const r of runs) {
  let report;
  try {
    report = JSON.parse(readFileSync(r.json, 'utf8'));
  } catch {
    // The run died before it wrote a report: count it as one failure.
    banner(`${r.name}: no report (exit ${r.code}${r.signal ? `, ${r.signal}` : ''})`);
    merged.numFailedTests += 1;
    merged.success = false;
    unexplained = true;
    continue;
  }
  for (const k of ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTodoTests']) {
    merged[k] += report[k] ?? 0;
  }
  merged.numTotalTests += report.numTotalTests ?? 0;
  const ok = report.success !== false && r.code === 0;
  merged.success &&= ok;
  // A run that failed with no failed file (an unhandled error, a crash after its tests) cannot
  // be mended by re-running files.
  if (!ok && !(report.testResults ?? []).some((f) => f.status === 'failed')) unexplained = true;
  merged.testResults.push(...(report.testResults ?? []));
}

// A few failed files run once more, alone, on a machine no longer shared with the other lane. A
// file that then passes is reported as flaky (every failed test named, with its first message, by
// .ci/summary.mjs) and counted by its second run; one that fails again stays failed. More than
// MAX_RERUN failed files is a breakage, not noise: nothing is re-run.
const MAX_RERUN = 4;
const failedFiles = merged.testResults.filter((f) => f.status === 'failed');
if (!merged.success && !unexplained && failedFiles.length > 0 && failedFiles.length <= MAX_RERUN) {
  const files = [...new Set(failedFiles.map((f) => f.name))];
  banner(`re-running ${files.length} failed file(s) once, alone: ${files.join(', ')}`);
  rmSync(`${REPORTS}/rerun.json`, { force: true });
  const rerun = await vitest('rerun', files, true);
  banner(`re-run: exit ${rerun.code} after ${rerun.s}s`);
  let again;
  try {
    again = JSON.parse(readFileSync(rerun.json, 'utf8'));
  } catch {
    banner(`re-run: no report (exit ${rerun.code}${rerun.signal ? `, ${rerun.signal}` : ''})`);
  }
  const count = (f, status) => (f.assertionResults ?? []).filter((a) => a.status === status).length;
  merged.flaky = [];
  for (const second of again?.testResults ?? []) {
    if (second.status !== 'passed') continue;
    const i = merged.testResults.findIndex((f) => f.name === second.name);
    if (i < 0) continue;
    const first = merged.testResults[i];
    merged.flaky.push({
      name: first.name,
      tests: (first.assertionResults ?? [])
        .filter((a) => a.status === 'failed')
        .map((a) => ({ fullName: a.fullName, failureMessages: a.failureMessages })),
    });
    merged.numFailedTests -= count(first, 'failed');
    merged.numPassedTests += count(second, 'passed') - count(first, 'passed');
    merged.testResults[i] = second;
  }
  merged.success =
    merged.testResults.every((f) => f.status !== 'failed') && merged.numFailedTests === 0;
}
writeFileSync(RESULTS, JSON.stringify(merged));
process.exit(merged.success ? 0 : 1);
