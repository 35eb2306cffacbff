import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../../operator/bench/result.js';
import { CLI, freePort, UpProcess, type UpStatus } from './up-helpers.js';

// A 10-second `socketfleet bench` against a local `socketfleet up`, both real child processes.

function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('socketfleet bench against socketfleet up', () => {
  let up: UpProcess;
  let status: UpStatus;

  beforeAll(async () => {
    up = new UpProcess(await freePort());
    up.writeSpec((spec) => {
      spec.replicas = 2;
      spec.redis = { shards: 2 };
    });
    up.start();
    status = await up.waitReady();
  });

  afterAll(async () => {
    await up.destroy();
  });

  it('delivers every message of a 10-second run with zero loss and writes result.json and report.html', async () => {
    const out = join(up.dir, 'bench-out');
    const r = await runCli(
      [
        'bench',
        '--url',
        status.url!,
        '--clients',
        '200',
        '--rooms',
        '10',
        '--rate',
        '50',
        '--duration',
        '10',
        '--transports',
        'polling,websocket',
        // Paced: 200 clients at 100/s cannot be open in less than 2 s.
        '--ramp-rate',
        '100',
        '--pids',
        status.servers.map((s) => s.pid).join(','),
        '--redis',
        status.redis.map((s) => `127.0.0.1:${s.port}`).join(','),
        '--out',
        out,
        '--json',
        '--quiet',
      ],
      {
        ...process.env,
        BENCH_REDIS_USERNAME: 'socketfleet-server',
        BENCH_REDIS_PASSWORD: up.password(),
      },
    );
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(result.connections).toMatchObject({ connected: 200, failed: 0, joinFailed: 0 });
    expect(result.connections.connectSeconds).toBeGreaterThanOrEqual(1.9);
    // 50/s for 10 s, each to a room of 20 members.
    expect(result.delivery.published).toBe(500);
    expect(result.delivery.expected).toBe(500 * 20);
    expect(result.delivery.delivered).toBe(result.delivery.expected);
    expect(result.delivery.lost).toBe(0);
    expect(result.errors.total).toBe(0);
    expect(result.pass).toBe(true);
    expect(r.code).toBe(0);
    expect(result.latency.count).toBe(result.delivery.delivered);
    expect(result.latency.p99Ms).toBeGreaterThan(0);
    expect(result.wire.bytesPerDelivered).toBeGreaterThan(100);
    expect(result.server?.processes).toBe(2);
    expect(result.server?.cpuSecondsRun).toBeGreaterThan(0);
    // Every Redis node the bench measured: 2 shards, each a master and a replica.
    expect(result.redis?.shards).toBe(4);
    expect(result.redis?.netBytes).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'))).toEqual(result);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|src="http/);
  });

  it("reads server CPU and memory from the servers' /metrics when it cannot see their pids", async () => {
    const r = await runCli(
      [
        'bench',
        '--url',
        status.url!,
        '--clients',
        '20',
        '--rooms',
        '2',
        '--rate',
        '10',
        '--duration',
        '2',
        ...status.servers.flatMap((s) => ['--metrics', `http://127.0.0.1:${s.opsPort}/metrics`]),
        '--json',
        '--quiet',
      ],
      process.env,
    );
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(r.code).toBe(0);
    expect(result.delivery.lost).toBe(0);
    expect(result.server).toMatchObject({ source: 'metrics', processes: 2 });
    expect(result.server!.rssAfterConnectBytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(result.redis).toBeUndefined();
  });

  it('exits 1 when the gate fails: a run that cannot connect is an error', async () => {
    const dead = await freePort();
    const r = await runCli(
      [
        'bench',
        '--url',
        `http://127.0.0.1:${dead}`,
        '--clients',
        '5',
        '--duration',
        '1',
        '--rate',
        '5',
        '--json',
        '--quiet',
      ],
      process.env,
    );
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout) as BenchResult;
    expect(result.connections.failed).toBe(6);
    expect(result.pass).toBe(false);
    expect(result.failures).toContain('no client connected');
  });
});
