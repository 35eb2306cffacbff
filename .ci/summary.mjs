// Prints the one closing line CI reads ("N passed, N failed") from vitest's JSON report plus the
// CI steps counted by .ci/run, and exits non-zero on any failure.
import { existsSync, readFileSync } from 'node:fs';

const [resultsPath, stepsPassed, stepsFailed, testStatus] = process.argv.slice(2);
const relative = (path) => String(path ?? '?').replace(`${process.cwd()}/`, '');
/** A failed test's first message, its first three lines on one line. */
const firstLines = (a) =>
  String(a.failureMessages?.[0] ?? '')
    .split('\n')
    .slice(0, 3)
    .join(' | ')
    .slice(0, 600);
let passed = Number(stepsPassed ?? 0);
let failed = Number(stepsFailed ?? 0);
let skipped = 0;
if (resultsPath && existsSync(resultsPath)) {
  const report = JSON.parse(readFileSync(resultsPath, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A suite that failed to load has no failed tests but must still fail CI.
  failed += (report.testResults ?? []).filter(
    (r) => r.status === 'failed' && (r.assertionResults ?? []).every((a) => a.status !== 'failed'),
  ).length;
  if (report.success === false && failed === 0) failed += 1;
  for (const file of report.flaky ?? []) {
    for (const a of file.tests ?? []) {
      console.log(
        `::: FLAKY ${relative(file.name)} > ${a.fullName}: failed, then passed when its file ran again alone: ${firstLines(a)}`,
      );
    }
  }
  // CI shows only the tail of its output: name every failure here, next to the closing line.
  for (const file of report.testResults ?? []) {
    for (const a of file.assertionResults ?? []) {
      if (a.status === 'failed')
        console.log(
          `::: FAILED ${relative(file.name)} > ${a.fullName ?? a.title}: ${firstLines(a)}`,
        );
    }
    if (
      file.status === 'failed' &&
      (file.assertionResults ?? []).every((a) => a.status !== 'failed')
    ) {
      console.log(
        `::: FAILED ${relative(file.name)} (did not load): ${String(file.message ?? '').slice(0, 600)}`,
      );
    }
  }
} else if (failed === 0) {
  // npm test stopped before vitest wrote a report (format, typecheck, lint or build failed).
  failed += 1;
}
// npm test can fail after vitest reported success only through a crash; never let that pass.
if (testStatus && testStatus !== '0' && failed === 0) failed += 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
