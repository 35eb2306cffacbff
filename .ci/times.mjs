// Prints the wall time of every test file from vitest's JSON report, one line each, so a CI log
// shows where the minutes go (the real-node files dominate).
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const [resultsPath] = process.argv.slice(2);
if (resultsPath && existsSync(resultsPath)) {
  const report = JSON.parse(readFileSync(resultsPath, 'utf8'));
  const files = (report.testResults ?? [])
    .map((r) => ({ name: relative(process.cwd(), r.name), s: (r.endTime - r.startTime) / 1000 }))
    .filter((f) => Number.isFinite(f.s))
    .sort((a, b) => b.s - a.s);
  console.log(`::: wall time per test file (${files.length} files)`);
  for (const f of files) console.log(`::: ${f.s.toFixed(1).padStart(7)}s  ${f.name}`);
}
