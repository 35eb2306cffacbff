import { describe, expect, it } from 'vitest';
import { renderReportHtml } from '../../operator/bench/report-html.js';
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
