import type { StatusRow } from './cluster.js';

export function formatStatusTable(rows: StatusRow[]): string {
  const header = ['COMPONENT', 'PID', 'ADDRESS', 'READY'];
  const body = rows.map((r) => [
    r.component,
    r.pid === undefined ? '-' : String(r.pid),
    r.address,
    r.ready ? 'yes' : 'no',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [header, ...body]
    .map((cols) =>
      cols
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
