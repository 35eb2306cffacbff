import { describe, expect, it } from 'vitest';
import { capacityReport, type CapacityFacts } from '../../operator/bench/capacity.js';

const MiB = 1048576;

function facts(over: Partial<CapacityFacts> = {}): CapacityFacts {
  return {
    asked: 100_000,
    connected: 100_000,
    failed: 0,
    joinFailed: 0,
    disconnects: 0,
    holdSeconds: 302,
    rampSeconds: 500,
    rate: 1000,
    published: 300_000,
    refused: 0,
    expected: 3_000_000,
    lost: 0,
    latencyMs: { p50: 2, p99: 40, p999: 120, max: 300 },
    generatorLateP99Ms: 1,
    serverRssPerConnectionBytes: 11 * 1024,
    serverRssPerConnectionHeldBytes: 11.5 * 1024,
    nginxRssPerConnectionBytes: 2 * 1024,
    nginxWorkers: 13,
    errorSamples: [],
    machine: {
      cores: 2,
      busyRamp: 0.6,
      busyHold: 0.5,
      memTotalBytes: 24_000 * MiB,
      memAvailableMinBytes: 15_000 * MiB,
      maxFds: [{ role: 'server', fds: 12_050 }],
      fdLimit: 20_000,
      tcpKernelBytes: 800 * MiB,
    },
    cpuRamp: { clients: 300, servers: 200, nginx: 50, redis: 10 },
    cpuHold: { clients: 100, servers: 150, nginx: 20, redis: 10 },
    clientProcesses: 13,
    clientRssBytes: 3000 * MiB,
    ...over,
  };
}

describe('capacityReport', () => {
  it('passes every target when all are met and names no limit', () => {
    const r = capacityReport(facts());
    expect(r.pass).toBe(true);
    expect(r.lines.filter((l) => l.startsWith('PASS'))).toHaveLength(3);
    expect(r.lines.at(-1)).toMatch(/^LIMIT {2}none of CPU/);
  });

  it('fails the hold on one unexpected disconnect and on a shorter hold', () => {
    expect(capacityReport(facts({ disconnects: 1 })).lines[0]).toMatch(/^FAIL .* 1 unexpected/);
    expect(capacityReport(facts({ holdSeconds: 180 })).pass).toBe(false);
  });

  it('fails the background target when it ran slow or lost a delivery', () => {
    expect(capacityReport(facts({ published: 250_000 })).lines[1]).toMatch(/^FAIL {2}1,000/);
    expect(capacityReport(facts({ lost: 1 })).lines[1]).toMatch(/^FAIL/);
  });

  it('fails memory above 12 KiB per connection', () => {
    const r = capacityReport(facts({ serverRssPerConnectionBytes: 12.5 * 1024 }));
    expect(r.lines[2]).toMatch(/^FAIL {2}server RSS per idle connection <= 12 KiB: 12\.5 KiB/);
  });

  it('blames the CPU when handshakes failed on saturated cores, with the numbers', () => {
    const r = capacityReport(
      facts({
        connected: 98_343,
        failed: 1657,
        errorSamples: ['connect: timeout'],
        machine: { ...facts().machine, busyRamp: 0.98 },
      }),
    );
    expect(r.pass).toBe(false);
    expect(r.lines.at(-1)).toContain(
      'CPU during the ramp: 1,657 handshakes failed (connect: timeout) while both cores were 98% busy (56% of them this run',
    );
  });

  it('names open files and memory when they ran out', () => {
    const r = capacityReport(
      facts({
        machine: {
          ...facts().machine,
          memAvailableMinBytes: 1000 * MiB,
          maxFds: [{ role: 'nginx', fds: 19_500 }],
        },
      }),
    );
    expect(r.lines.at(-1)).toContain('memory: only 1.0 GiB was left available');
    expect(r.lines.at(-1)).toContain('open files: a nginx process held 19,500 of its 20,000');
  });
});
