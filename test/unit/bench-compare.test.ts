import { describe, expect, it } from 'vitest';
import {
  AT_SCALE_TARGETS,
  combineRounds,
  formatComparison,
  formatKernelShares,
  formatVerdicts,
  judge,
  ratio,
  TARGETS,
  type Metrics,
} from '../../test/bench/compare-table.js';

const plain: Metrics = {
  cpuMsPer1000: 100,
  kernelCpuMsPer1000: 40,
  redisBytesPerPublish: 2000,
  wireBytesPerMessage: 414,
  p99Ms: 20,
  rssPerConnectionBytes: 20 * 1024,
  lossRatio: 0,
  lost: 0,
  errors: 0,
};

describe('comparison verdicts', () => {
  it("compares each socketfleet variant with its baseline (plain, or the ws floor) against issue 18's limits", () => {
    const affinity: Metrics = {
      ...plain,
      cpuMsPer1000: 50,
      redisBytesPerPublish: 600,
      p99Ms: 21,
      rssPerConnectionBytes: 19 * 1024,
    };
    const ipHash: Metrics = { ...plain, cpuMsPer1000: 80, redisBytesPerPublish: 1200, p99Ms: 20 };
    const floor: Metrics = { ...plain, cpuMsPer1000: 45 };
    const v = judge(
      TARGETS,
      { plain, ws: floor },
      { 'room-affinity': affinity, 'ip-hash': ipHash },
    );
    const byText = Object.fromEntries(v.map((x) => [x.target.text, x]));
    expect(
      byText['room-affinity: server CPU per 1000 delivered <= 1.15x the raw ws floor'],
    ).toMatchObject({ value: 50 / 45, pass: true });
    expect(byText['room-affinity: Redis bytes per published message <= 0.25x plain']).toMatchObject(
      { value: 0.3, pass: false },
    );
    expect(byText['room-affinity: p99 latency <= 1.0x plain']).toMatchObject({
      value: 1.05,
      pass: false,
    });
    expect(byText['ip-hash: server CPU per 1000 delivered <= 0.9x plain']).toMatchObject({
      value: 0.8,
      pass: true,
    });
    // Without the floor in the run, its ratio is not measured rather than judged against plain.
    const noFloor = judge(TARGETS, { plain }, { 'room-affinity': affinity });
    expect(noFloor.find((x) => x.target.baseline === 'ws')?.pass).toBeUndefined();
    expect(byText['ip-hash: Redis bytes per published message <= 0.6x plain']).toMatchObject({
      value: 0.6,
      pass: true,
    });
    expect(byText['ip-hash: memory per idle connection <= 1.0x plain']).toMatchObject({
      value: 1,
      pass: true,
    });
  });

  it('fails zero-loss on any lost delivery or error, and marks unmeasured targets N/A', () => {
    const lossy: Metrics = { ...plain, lost: 1, lossRatio: 0.0001 };
    const v = judge(AT_SCALE_TARGETS, { plain }, { 'room-affinity': lossy });
    expect(v.find((x) => x.target.metric === 'loss')?.pass).toBe(false);
    const none = judge(TARGETS, { plain }, {});
    expect(none.every((x) => x.pass === undefined)).toBe(true);
    expect(formatVerdicts(none)).toContain('N/A   room-affinity: zero loss: not measured');
    expect(ratio(1, 0)).toBeUndefined();
  });

  it('prints absolute values and ratios to plain as a markdown table', () => {
    const t = formatComparison(
      { plain, 'ip-hash': { ...plain, cpuMsPer1000: 50, redisBytesPerPublish: undefined } },
      ['plain', 'ip-hash', 'ws'],
      { plain: 'plain', 'ip-hash': 'sf ip-hash' },
    );
    const lines = t.split('\n');
    expect(lines[0]).toMatch(/^\| metric\s+\| plain\s+\| sf ip-hash\s+\| ip-hash \/ plain \|$/);
    expect(t).toMatch(/\| server CPU ms per 1000 delivered\s+\| 100\.0\s+\| 50\.0\s+\| 0\.50\s+\|/);
    expect(t).toMatch(/\| Redis bytes per published message\s+\| 2000\s+\| n\/a\s+\| n\/a\s+\|/);
    expect(t).toMatch(/\| RSS per connection KiB\s+\| 20\.0\s+\| 20\.0\s+\| 1\.00\s+\|/);
  });

  it('combines rounds into medians, keeping every loss and error', () => {
    const rounds: Metrics[] = [
      { ...plain, cpuMsPer1000: 30, p99Ms: 10 },
      { ...plain, cpuMsPer1000: 10, p99Ms: 40, lost: 2, lossRatio: 0.001, errors: 1 },
      { ...plain, cpuMsPer1000: 20, p99Ms: 20, rssPerConnectionBytes: undefined },
    ];
    expect(combineRounds(rounds)).toEqual({
      ...plain,
      cpuMsPer1000: 20,
      p99Ms: 20,
      lost: 2,
      lossRatio: 0.001,
      errors: 1,
    });
    expect(
      combineRounds([{ ...plain, redisBytesPerPublish: undefined }]).redisBytesPerPublish,
    ).toBeUndefined();
  });

  it("splits each target's server CPU into kernel and user space, as shares of plain's total", () => {
    const lines = formatKernelShares(
      {
        plain,
        'room-affinity': { ...plain, cpuMsPer1000: 70, kernelCpuMsPer1000: 45 },
        ws: { ...plain, kernelCpuMsPer1000: undefined },
      },
      ['plain', 'room-affinity', 'ws'],
    );
    expect(lines).toEqual([
      "- plain: kernel 0.40 + user space 0.60 of plain's server CPU per delivered message",
      "- room-affinity: kernel 0.45 + user space 0.25 of plain's server CPU per delivered message",
    ]);
    expect(formatKernelShares({ 'room-affinity': plain }, ['room-affinity'])).toEqual([]);
    const idle = { ...plain, cpuMsPer1000: 0 };
    expect(formatKernelShares({ plain: idle, ws: plain }, ['plain', 'ws'])).toEqual([]);
  });
});
