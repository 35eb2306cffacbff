// Runs `socketfleet operator` as a real child process (through tsx, so the test exercises the
// current sources without a build step) and reads its /metrics, /readyz and JSON logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface OperatorProcess {
  pid: number;
  metricsPort: number;
  /** Every JSON log line so far. */
  logs(): Record<string, unknown>[];
  /** Raw stdout + stderr so far (for failure messages and secret checks). */
  output(): string;
  /** Sum of a counter over the label sets that match `filter`. */
  counter(name: string, filter?: (labels: Record<string, string>) => boolean): Promise<number>;
  gauge(name: string): Promise<number | undefined>;
  /** Write requests so far by "verb kind". */
  writes(): Promise<Record<string, number>>;
  readyz(): Promise<number>;
  healthz(): Promise<number>;
  /** SIGTERM, then wait for exit; resolves the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash): no cleanup, no Lease release. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

const running = new Set<ChildProcess>();
/**
 * The operator key, as the chart's Secret mount would provide it: one per test process, so
 * operators started by one test (a leader and its standby) derive the same Redis passwords.
 */
const keyDir = mkdtempSync(join(tmpdir(), 'socketfleet-operator-key-'));
export const OPERATOR_KEY = randomBytes(48);
const keyFile = join(keyDir, 'key');
writeFileSync(keyFile, OPERATOR_KEY, { mode: 0o600 });
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  rmSync(keyDir, { recursive: true, force: true });
});

export async function startOperator(kubeconfig: string, args: string[]): Promise<OperatorProcess> {
  const metricsPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repo, 'operator/cli/main.ts'),
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--metrics-port',
      String(metricsPort),
      // kwok's pods run no Redis for the operator to form or reshard.
      '--redis-admin=false',
      `--operator-key-file=${keyFile}`,
      ...args,
    ],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: kubeconfig },
    },
  );
  running.add(child);
  let out = '';
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((res) =>
    child.once('exit', (code) => {
      running.delete(child);
      res(code);
    }),
  );

  const metricsText = async (): Promise<string> => {
    const r = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    return r.text();
  };
  const samples = async (
    name: string,
  ): Promise<{ labels: Record<string, string>; value: number }[]> => {
    const text = await metricsText();
    const result: { labels: Record<string, string>; value: number }[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ([^ ]+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const labels: Record<string, string> = {};
      for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g))
        labels[pair[1]!] = pair[2]!;
      result.push({ labels, value: Number(m[4]) });
    }
    return result;
  };

  const proc: OperatorProcess = {
    pid: child.pid!,
    metricsPort,
    logs: () => lines,
    output: () => out,
    exited,
    async counter(name, filter = () => true) {
      return (await samples(name)).filter((s) => filter(s.labels)).reduce((a, s) => a + s.value, 0);
    },
    async writes() {
      const out: Record<string, number> = {};
      for (const s of await samples('socketfleet_operator_api_write_requests_total')) {
        out[`${s.labels.verb} ${s.labels.kind}`] = s.value;
      }
      return out;
    },
    async gauge(name) {
      return (await samples(name))[0]?.value;
    },
    async healthz() {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      return r.status;
    },
    async readyz() {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      return r.status;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  return proc;
}

/** Write requests the operator sent, excluding its Lease renewals (which never stop). */
export function nonLeaseWrites(p: OperatorProcess): Promise<number> {
  return p.counter('socketfleet_operator_api_write_requests_total', (l) => l.kind !== 'Lease');
}
