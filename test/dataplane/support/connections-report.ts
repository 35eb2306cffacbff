import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  renderConnectionsReportHtml,
  type ConnectionsCurve,
} from '../../../operator/bench/report-html.js';

/**
 * Writes a run's connections curve as a bench report page (report.html, inline SVG) and its data
 * (curve.json) under $SOCKETFLEET_BENCH_RESULTS, by default the temp dir's
 * socketfleet-bench-results, so tests never write into the repository; returns the page's path.
 */
export function writeConnectionsReport(
  name: string,
  startedAt: number,
  title: string,
  curve: ConnectionsCurve,
  notes: string[],
): string {
  const dir = join(
    process.env.SOCKETFLEET_BENCH_RESULTS ?? join(tmpdir(), 'socketfleet-bench-results'),
    `${name}-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}`,
  );
  mkdirSync(dir, { recursive: true });
  const page = join(dir, 'report.html');
  writeFileSync(page, renderConnectionsReportHtml(title, curve, notes));
  writeFileSync(join(dir, 'curve.json'), `${JSON.stringify(curve)}\n`);
  return page;
}
