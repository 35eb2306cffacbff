import type { BenchResult } from './result.js';
import { formatSummary } from './result.js';

/** A self-contained HTML report: inline SVG plots, no scripts, no external assets. */

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const W = 720;
const H = 260;
const PAD = { l: 60, r: 60, t: 20, b: 40 };

function histogramSvg(r: BenchResult): string {
  const buckets = r.latencyBuckets;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const bw = (W - PAD.l - PAD.r) / Math.max(1, buckets.length);
  const ih = H - PAD.t - PAD.b;
  const bars = buckets
    .map((b, i) => {
      const h = (b.count / max) * ih;
      const x = PAD.l + i * bw;
      return (
        `<rect x="${x + 2}" y="${PAD.t + ih - h}" width="${bw - 4}" height="${h}" fill="#4a7fb5"><title>&lt;= ${b.upToMs} ms: ${b.count}</title></rect>` +
        `<text x="${x + bw / 2}" y="${H - PAD.b + 14}" font-size="9" text-anchor="middle">${b.upToMs}</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="latency histogram">
<text x="${W / 2}" y="${H - 6}" font-size="11" text-anchor="middle">latency bucket upper bound (ms)</text>
<text x="12" y="${PAD.t + ih / 2}" font-size="11" transform="rotate(-90 12 ${PAD.t + ih / 2})" text-anchor="middle">deliveries</text>
<line x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#333"/>
<text x="${PAD.l - 4}" y="${PAD.t + 8}" font-size="10" text-anchor="end">${max}</text>
${bars}</svg>`;
}

function polyline(points: [number, number][], color: string): string {
  return `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`;
}

function timelineSvg(r: BenchResult): string {
  const pts = r.timeline.filter((p) => p.t > 0);
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  const maxT = Math.max(1, ...pts.map((p) => p.t));
  const maxD = Math.max(1, ...pts.map((p) => p.delivered));
  const maxL = Math.max(0.001, ...pts.map((p) => p.p99Ms));
  const x = (t: number): number => PAD.l + (t / maxT) * iw;
  const yD = (v: number): number => PAD.t + ih - (v / maxD) * ih;
  const yL = (v: number): number => PAD.t + ih - (v / maxL) * ih;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="throughput and latency over time">
<line x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#333"/>
<line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${PAD.t + ih}" stroke="#4a7fb5"/>
<line x1="${W - PAD.r}" y1="${PAD.t}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#c0504d"/>
<text x="${PAD.l - 4}" y="${PAD.t + 8}" font-size="10" text-anchor="end" fill="#4a7fb5">${maxD}/s</text>
<text x="${W - PAD.r + 4}" y="${PAD.t + 8}" font-size="10" fill="#c0504d">${maxL} ms</text>
<text x="${W / 2}" y="${H - 6}" font-size="11" text-anchor="middle">seconds (blue: delivered/s, red: p99 latency)</text>
<text x="${W - PAD.r}" y="${H - PAD.b + 14}" font-size="10" text-anchor="end">${maxT}</text>
${polyline(
  pts.map((p) => [x(p.t), yD(p.delivered)]),
  '#4a7fb5',
)}
${polyline(
  pts.map((p) => [x(p.t), yL(p.p99Ms)]),
  '#c0504d',
)}
</svg>`;
}

/** Connections per server over time, as an autoscaling run records them each interval. */
export interface ConnectionsCurve {
  points: {
    /** Seconds since the run started. */
    t: number;
    /** Server replicas (ready or starting) at that moment. */
    replicas: number;
    /** Each ready server's connected clients, by server name; absent = not sampled. */
    servers: Record<string, number>;
  }[];
  /** Moments worth a vertical marker (scale events, a rebalance), in seconds. */
  marks?: { t: number; label: string }[];
}

const PALETTE = ['#4a7fb5', '#c0504d', '#9bbb59', '#8064a2', '#4bacc6', '#f79646', '#2c4d75'];

/**
 * One line per server (its connections while it was sampled), the replica count as a grey step
 * line on the right axis, and dashed markers: the shape of a ramp, of a scale-up that left the
 * new servers idle, and of a rebalance that evened them out.
 */
export function connectionsSvg(curve: ConnectionsCurve): string {
  const pts = curve.points;
  const names: string[] = [];
  for (const p of pts)
    for (const n of Object.keys(p.servers)) if (!names.includes(n)) names.push(n);
  const ih = H - PAD.t - PAD.b;
  const iw = W - PAD.l - PAD.r;
  const maxT = Math.max(1, ...pts.map((p) => p.t), ...(curve.marks ?? []).map((m) => m.t));
  const maxC = Math.max(1, ...pts.flatMap((p) => Object.values(p.servers)));
  const maxR = Math.max(1, ...pts.map((p) => p.replicas));
  const x = (t: number): number => PAD.l + (t / maxT) * iw;
  const yC = (v: number): number => PAD.t + ih - (v / maxC) * ih;
  const yR = (v: number): number => PAD.t + ih - (v / maxR) * ih;
  const line = (series: string, cls: string, color: string, xy: [number, number][]): string =>
    `<polyline class="${cls}" data-series="${esc(series)}" fill="none" stroke="${color}" stroke-width="${cls === 'replicas' ? 1.5 : 2}" points="${xy.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"><title>${esc(series)}</title></polyline>`;
  const servers = names.map((name, i) =>
    line(
      name,
      'server',
      PALETTE[i % PALETTE.length]!,
      pts.filter((p) => p.servers[name] !== undefined).map((p) => [x(p.t), yC(p.servers[name]!)]),
    ),
  );
  // A step line: the count holds until the next sample.
  const steps: [number, number][] = [];
  pts.forEach((p, i) => {
    if (i > 0) steps.push([x(p.t), yR(pts[i - 1]!.replicas)]);
    steps.push([x(p.t), yR(p.replicas)]);
  });
  const marks = (curve.marks ?? []).map(
    (m) =>
      `<line class="mark" x1="${x(m.t).toFixed(1)}" y1="${PAD.t}" x2="${x(m.t).toFixed(1)}" y2="${PAD.t + ih}" stroke="#999" stroke-dasharray="4 3"><title>${esc(m.label)} (${m.t} s)</title></line>`,
  );
  const legendH = 14 * Math.ceil(names.length / 4);
  const legend = names.map(
    (name, i) =>
      `<text x="${PAD.l + (i % 4) * 160}" y="${H + 12 + 14 * Math.floor(i / 4)}" font-size="10" fill="${PALETTE[i % PALETTE.length]!}">${esc(name)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + legendH + 8}" role="img" aria-label="connections per server over time">
<line x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#333"/>
<line x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${PAD.t + ih}" stroke="#333"/>
<line x1="${W - PAD.r}" y1="${PAD.t}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#888"/>
<text x="${PAD.l - 4}" y="${PAD.t + 8}" font-size="10" text-anchor="end">${maxC}</text>
<text x="${W - PAD.r + 4}" y="${PAD.t + 8}" font-size="10" fill="#888">${maxR} replicas</text>
<text x="${W / 2}" y="${H - 6}" font-size="11" text-anchor="middle">seconds (lines: connections per server; grey: replicas; dashed: events)</text>
<text x="${W - PAD.r}" y="${H - PAD.b + 14}" font-size="10" text-anchor="end">${maxT}</text>
${marks.join('\n')}
${line('replicas', 'replicas', '#888', steps)}
${servers.join('\n')}
${legend.join('\n')}
</svg>`;
}

/** A self-contained page for a run that has no BenchResult, only its connections curve. */
export function renderConnectionsReportHtml(
  title: string,
  curve: ConnectionsCurve,
  notes: string[],
): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:800px}pre{background:#f4f4f4;padding:1em;overflow-x:auto}</style>
</head><body>
<h1>${esc(title)}</h1>
<pre>${esc(notes.join('\n'))}</pre>
<h2>Connections per server over time</h2>
${connectionsSvg(curve)}
</body></html>
`;
}

export function renderReportHtml(r: BenchResult, connections?: ConnectionsCurve): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>socketfleet bench ${esc(r.startedAt)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:800px}pre{background:#f4f4f4;padding:1em;overflow-x:auto}.pass{color:#2a7d2a}.fail{color:#b22}</style>
</head><body>
<h1>socketfleet bench <span class="${r.pass ? 'pass' : 'fail'}">${r.pass ? 'PASS' : 'FAIL'}</span></h1>
<p>${esc(r.startedAt)} against ${esc(r.target.url)}</p>
<pre>${esc(formatSummary(r))}</pre>
<h2>End-to-end latency</h2>
${histogramSvg(r)}
<h2>Throughput and p99 latency over time</h2>
${timelineSvg(r)}
${connections ? `<h2>Connections per server over time</h2>\n${connectionsSvg(connections)}` : ''}
</body></html>
`;
}
