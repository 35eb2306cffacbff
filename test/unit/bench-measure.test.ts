import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, roomOf, sourceAddress } from '../../operator/bench/addresses.js';
import {
  decodeHistogram,
  encodeHistogram,
  latencyBuckets,
  newHistogram,
  summarize,
} from '../../operator/bench/histogram.js';
import { extractTimestamp, makePayload } from '../../operator/bench/payload.js';
import {
  infoNumber,
  metricValue,
  processTree,
  sampleProcesses,
} from '../../operator/bench/resources.js';

describe('source addresses', () => {
  it('gives each of the first 64516 clients its own /24 on loopback, so ip_hash tells them apart', () => {
    const nets = new Set<string>();
    for (let i = 0; i < 254 * 254; i++) nets.add(sourceAddress(i).split('.').slice(0, 3).join('.'));
    expect(nets.size).toBe(254 * 254);
    expect(sourceAddress(0)).toBe('127.1.1.1');
    expect(sourceAddress(254)).toBe('127.2.1.1');
  });

  it('only spreads when the target is loopback', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('10.0.0.5')).toBe(false);
  });
});

/** nginx's ip_hash peer choice (ngx_http_upstream_ip_hash_module.c) for equal weights. */
function nginxIpHash(addr: string, peers: number): number {
  let hash = 89;
  for (const octet of addr.split('.').slice(0, 3).map(Number)) hash = (hash * 113 + octet) % 6271;
  return hash % peers;
}

describe('room assignment', () => {
  it('does not correlate with the ip_hash server, so ip-hash spreads every room over the servers', () => {
    const clients = 3000;
    const rooms = 30;
    const servers = 3;
    const seen = Array.from({ length: rooms }, () => new Set<number>());
    const sizes = new Array<number>(rooms).fill(0);
    for (let i = 0; i < clients; i++) {
      const r = roomOf(i, rooms);
      seen[r]!.add(nginxIpHash(sourceAddress(i), servers));
      sizes[r]!++;
    }
    // With i % rooms every room would sit on exactly one server here.
    expect(seen.every((s) => s.size === servers)).toBe(true);
    expect(Math.min(...sizes)).toBeGreaterThan(60);
    expect(Math.max(...sizes)).toBeLessThan(140);
  });
});

describe('payload', () => {
  it('serialises to about the requested size and carries its due time', () => {
    const p = makePayload(370, 3, 42, 'room-7', 1_700_000_000_123.25);
    expect(p.ts).toBe(1_700_000_000_123.25);
    const len = JSON.stringify(p).length;
    expect(len).toBeGreaterThanOrEqual(360);
    expect(len).toBeLessThanOrEqual(380);
    expect(extractTimestamp({ room: 'room-7', data: p })).toBe(p.ts);
    expect(extractTimestamp(p)).toBe(p.ts);
    expect(extractTimestamp('x')).toBeUndefined();
  });
});

describe('histogram', () => {
  it('survives the worker-to-coordinator encoding and reports percentiles in ms', () => {
    const h = newHistogram();
    for (let us = 1000; us <= 100_000; us += 1000) h.recordValue(us);
    const back = decodeHistogram(encodeHistogram(h));
    const s = summarize(back);
    expect(s.count).toBe(100);
    expect(s.p50Ms).toBeCloseTo(50, 0);
    expect(s.p99Ms).toBeCloseTo(99, 0);
    expect(s.maxMs).toBeCloseTo(100, 0);
    const buckets = latencyBuckets(back);
    expect(buckets.reduce((a, b) => a + b.count, 0)).toBe(100);
    expect(buckets.find((b) => b.upToMs === 1)?.count).toBe(1);
  });

  it('summarises an empty histogram as zeros', () => {
    expect(summarize(newHistogram())).toMatchObject({ count: 0, p99Ms: 0 });
  });
});

describe('resource sampling', () => {
  it('reads CPU and RSS of a process tree from /proc', () => {
    expect(processTree([process.pid])).toContain(process.pid);
    const s = sampleProcesses([process.pid]);
    expect(s.processes).toBeGreaterThanOrEqual(1);
    expect(s.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(s.cpuSeconds).toBeGreaterThan(0);
  });

  it('tells kernel time from user time: a process that only makes syscalls is mostly system CPU', async () => {
    // 64 KiB reads from /dev/zero: the kernel zeroes every buffer, dd itself only loops. (One-byte
    // reads were kernel-heavy too, but split about evenly on a VM with costly syscall entry.)
    const dd = spawn('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=65536', 'count=100000000'], {
      stdio: 'ignore',
    });
    try {
      let s = sampleProcesses([dd.pid!]);
      for (let i = 0; i < 200 && s.cpuSeconds < 0.3; i++) {
        await sleep(50);
        s = sampleProcesses([dd.pid!]);
      }
      expect(s.cpuSeconds).toBeGreaterThanOrEqual(0.3);
      expect(s.systemSeconds).toBeGreaterThan(s.cpuSeconds / 2);
      expect(s.systemSeconds).toBeLessThanOrEqual(s.cpuSeconds);
    } finally {
      dd.kill('SIGKILL');
    }
  });

  it('parses Prometheus text and Redis INFO fields', () => {
    const prom =
      '# HELP x\nprocess_cpu_seconds_total 12.5\nprocess_cpu_system_seconds_total 4.5\nprocess_resident_memory_bytes{a="b"} 1e6\n';
    expect(metricValue(prom, 'process_cpu_seconds_total')).toBe(12.5);
    expect(metricValue(prom, 'process_cpu_system_seconds_total')).toBe(4.5);
    expect(metricValue(prom, 'process_resident_memory_bytes')).toBe(1e6);
    expect(
      infoNumber(
        '# Stats\r\ntotal_net_input_bytes:123\r\ntotal_net_output_bytes:456\r\n',
        'total_net_output_bytes',
      ),
    ).toBe(456);
  });
});
