import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';

/** Latencies are recorded in microseconds, up to one minute, with 3 significant digits. */
export function newHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

export function decodeHistogram(s: string): Histogram {
  return decodeFromCompressedBase64(s);
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0)
    return { count: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0 };
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    meanMs: ms(h.mean),
  };
}

/** Buckets for the report's histogram plot: counts per power-of-two-ish latency band. */
export function latencyBuckets(h: Histogram): { upToMs: number; count: number }[] {
  const edgesUs = [
    250, 500, 1000, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000, 30_000, 50_000, 75_000, 100_000,
    200_000, 500_000, 1_000_000, 60_000_000,
  ];
  const out: { upToMs: number; count: number }[] = [];
  let prevCount = 0;
  for (const edge of edgesUs) {
    const below = countAtOrBelow(h, edge);
    out.push({ upToMs: edge / 1000, count: below - prevCount });
    prevCount = below;
  }
  return out;
}

function countAtOrBelow(h: Histogram, valueUs: number): number {
  if (h.totalCount === 0) return 0;
  // Binary search on the percentile function: hdr-histogram-js exposes no cumulative count query.
  let lo = 0;
  let hi = 100;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (h.getValueAtPercentile(mid) <= valueUs) lo = mid;
    else hi = mid;
  }
  return Math.round((lo / 100) * h.totalCount);
}
