import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConnectionsReport } from '../dataplane/support/connections-report.js';
import {
  connectionsSvg,
  renderConnectionsReportHtml,
  renderReportHtml,
  type ConnectionsCurve,
} from '../../operator/bench/report-html.js';
import { evaluate, formatSummary, type BenchResult } from '../../operator/bench/result.js';

function result(over: Partial<BenchResult['delivery']> = {}, errors = 0): BenchResult {
  return {
    version: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    target: {
      url: 'http://127.0.0.1:8080/<x>',
      protocol: 'socketio',
      parser: 'msgpack',
      transports: ['websocket'],
      roomQuery: false,
    },
    workload: {
      clients: 10,
      rooms: 2,
      rate: 10,
      durationS: 2,
      publishers: 1,
      payloadBytes: 370,
      workers: 1,
    },
    connections: {
      connected: 10,
      failed: 0,
      joinFailed: 0,
      connectSeconds: 1,
      connectRatePerS: 10,
    },
    delivery: {
      published: 20,
      refused: 0,
      expected: 100,
      delivered: 100,
      lost: 0,
      lossRatio: 0,
      extra: 0,
      ...over,
    },
    latency: { count: 100, p50Ms: 1, p90Ms: 2, p99Ms: 3, p999Ms: 4, maxMs: 5, meanMs: 1.5 },
    generatorLateness: {
      count: 100,
      p50Ms: 0.1,
      p90Ms: 0.2,
      p99Ms: 0.3,
      p999Ms: 0.4,
      maxMs: 0.5,
      meanMs: 0.1,
    },
    latencyBuckets: [
      { upToMs: 1, count: 50 },
      { upToMs: 2, count: 50 },
    ],
    wire: { bytesReceived: 40000, bytesPerDelivered: 400 },
    clients: { processes: 1, cpuSecondsRun: 1, runSeconds: 2 },
    errors: {
      total: errors,
      connectFailed: errors,
      joinFailed: 0,
      refused: 0,
      disconnects: 0,
      samples: [],
    },
    timeline: [
      { t: 1, sent: 10, delivered: 50, p50Ms: 1, p99Ms: 3 },
      { t: 2, sent: 10, delivered: 50, p50Ms: 1, p99Ms: 2 },
    ],
    pass: true,
    failures: [],
  };
}

describe('gates', () => {
  it('passes a lossless, error-free run', () => {
    expect(evaluate(result(), { maxLoss: 0, maxErrors: 0 })).toMatchObject({
      pass: true,
      failures: [],
    });
  });

  it('fails on any loss by default and names the numbers', () => {
    const r = evaluate(result({ delivered: 99, lost: 1, lossRatio: 0.01 }), {
      maxLoss: 0,
      maxErrors: 0,
    });
    expect(r.pass).toBe(false);
    expect(r.failures).toEqual(['loss 1.000% (1 of 100 deliveries) exceeds --max-loss 0']);
    expect(
      evaluate(result({ delivered: 99, lost: 1, lossRatio: 0.01 }), { maxLoss: 0.02, maxErrors: 0 })
        .pass,
    ).toBe(true);
  });

  it('fails when errors exceed --max-errors', () => {
    expect(evaluate(result({}, 3), { maxLoss: 0, maxErrors: 2 }).failures).toEqual([
      '3 errors exceed --max-errors 2',
    ]);
    expect(evaluate(result({}, 2), { maxLoss: 0, maxErrors: 2 }).pass).toBe(true);
  });
});

describe('report', () => {
  it('is one self-contained HTML file with both plots and escaped text', () => {
    const html = renderReportHtml(evaluate(result(), { maxLoss: 0, maxErrors: 0 }));
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain('<polyline');
    expect(html).toContain('http://127.0.0.1:8080/&lt;x&gt;');
    expect(html).not.toMatch(/<script|<link|src=/);
    expect(formatSummary(result())).toContain('latency     p50 1ms  p99 3ms  p999 4ms');
  });
});

describe('connections per server plot', () => {
  // A ramp: one server, a second joins idle, a third; then a rebalance evens them out.
  const curve: ConnectionsCurve = {
    points: [
      { t: 0, replicas: 1, servers: { 's-1': 300 } },
      { t: 2, replicas: 2, servers: { 's-1': 600 } },
      { t: 4, replicas: 2, servers: { 's-1': 600, 's-2': 0 } },
      { t: 6, replicas: 3, servers: { 's-1': 900, 's-2': 0, 's-<3>': 0 } },
      { t: 8, replicas: 3, servers: { 's-1': 300, 's-2': 300, 's-<3>': 300 } },
    ],
    marks: [{ t: 7, label: 'rebalance' }],
  };
  const points = (svg: string, series: string): [number, number][] => {
    const m = new RegExp(`data-series="${series}"[^>]* points="([^"]*)"`).exec(svg);
    if (!m) throw new Error(`no series ${series}`);
    return m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
  };

  it('draws one line per server over the samples it was in, and the replicas as steps', () => {
    const svg = connectionsSvg(curve);
    expect(svg.match(/<polyline class="server"/g)).toHaveLength(3);
    expect(svg.match(/<polyline class="replicas"/g)).toHaveLength(1);
    expect(points(svg, 's-1')).toHaveLength(5);
    expect(points(svg, 's-2')).toHaveLength(3);
    // Names are escaped, in the series attribute and the legend alike.
    expect(points(svg, 's-&lt;3&gt;')).toHaveLength(2);
    expect(svg).not.toContain('s-<3>');
    // Steps: 5 samples, each change of x held at the previous count first.
    expect(points(svg, 'replicas')).toHaveLength(9);
    // The busiest sample (900) touches the top of the plot area; 0 sits on the x axis.
    const s1 = points(svg, 's-1');
    expect(Math.min(...s1.map(([, y]) => y))).toBe(20);
    expect(points(svg, 's-2')[0]![1]).toBe(220);
    // x grows with time, and the rebalance marker sits between the last two samples.
    expect(s1.map(([x]) => x)).toEqual([...s1.map(([x]) => x)].sort((a, b) => a - b));
    const mark = /<line class="mark" x1="([0-9.]+)"/.exec(svg);
    expect(Number(mark?.[1])).toBeGreaterThan(s1[3]![0]);
    expect(Number(mark?.[1])).toBeLessThan(s1[4]![0]);
  });

  it('is a self-contained page, and a section of the bench report when given', () => {
    const page = renderConnectionsReportHtml('autoscale ramp', curve, ['5 scale events']);
    expect(page.match(/<svg /g)).toHaveLength(1);
    expect(page).not.toMatch(/<script|<link|src=/);
    const bench = renderReportHtml(evaluate(result(), { maxLoss: 0, maxErrors: 0 }), curve);
    expect(bench.match(/<svg /g)).toHaveLength(3);
    expect(bench).toContain('Connections per server over time');
  });

  it('is written where SOCKETFLEET_BENCH_RESULTS says, with its data beside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'sf-report-'));
    const saved = process.env.SOCKETFLEET_BENCH_RESULTS;
    process.env.SOCKETFLEET_BENCH_RESULTS = root;
    try {
      const page = writeConnectionsReport(
        'ramp',
        Date.parse('2026-11-30T02:00:00Z'),
        't',
        curve,
        [],
      );
      expect(page).toBe(join(root, 'ramp-2026-11-30T02-00-00-000Z', 'report.html'));
      expect(readFileSync(page, 'utf8')).toContain('<svg ');
      expect(JSON.parse(readFileSync(join(dirname(page), 'curve.json'), 'utf8'))).toEqual(curve);
    } finally {
      if (saved === undefined) delete process.env.SOCKETFLEET_BENCH_RESULTS;
      else process.env.SOCKETFLEET_BENCH_RESULTS = saved;
      rmSync(root, { recursive: true, force: true });
    }
  });
});
