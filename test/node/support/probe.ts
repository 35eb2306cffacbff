// New sessions through the gateway while something changes: handshake-probe.mjs runs inside
// the node's network namespace and reports every HTTP status a new client would have seen.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CLIENT_SOURCE_IPS, type RealNode } from '../harness.js';

const script = join(dirname(fileURLToPath(import.meta.url)), 'handshake-probe.mjs');

export interface ProbeSummary {
  /** HTTP status (or "error CODE") of every handshake, counted. */
  statuses: Record<string, number>;
  handshakes: number;
  /** The first 200 handshakes that did not answer 200: start time, duration, source, status. */
  failures: { at: number; ms: number; source: string; status: string }[];
  /** The slowest handshake answered 200, and how many of them took 5 s or more. */
  maxMs: number;
  slow: number;
}

export interface HandshakeProbe {
  /** Resolves with the time (ms since epoch) the pod at `ip` first accepted a session. */
  firstSession(ip: string, metricsPort: number, timeoutMs: number): Promise<number>;
  stop(): Promise<ProbeSummary>;
}

/** `perRound` handshakes every `roundMs`, rotating over the node's client source addresses. */
export async function startHandshakeProbe(
  node: RealNode,
  gatewayIp: string,
  gatewayPort: number,
  perRound = 8,
  roundMs = 150,
): Promise<HandshakeProbe> {
  const cfg = { host: gatewayIp, port: gatewayPort, sources: CLIENT_SOURCE_IPS, perRound, roundMs };
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${node.name}`, '--', process.execPath, script, JSON.stringify(cfg)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const waiters = new Map<string, (line: Record<string, unknown>) => void>();
  let summary: ((s: ProbeSummary) => void) | undefined;
  let started: (() => void) | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    if (line.event === 'started') started?.();
    if (line.event === 'first-session') waiters.get(String(line.pod))?.(line);
    if (line.event === 'summary') summary?.(line as unknown as ProbeSummary);
  });
  await Promise.race([
    new Promise<void>((resolve) => (started = resolve)),
    exited.then((code) => {
      throw new Error(`handshake probe exited ${code} before it started`);
    }),
  ]);
  return {
    firstSession(ip: string, metricsPort: number, timeoutMs: number): Promise<number> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no session reached ${ip} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.set(ip, (line) => {
          clearTimeout(timer);
          resolve(Number(line.at));
        });
        child.stdin.write(`watch ${ip} ${metricsPort}\n`);
      });
    },
    async stop(): Promise<ProbeSummary> {
      const done = new Promise<ProbeSummary>((resolve) => (summary = resolve));
      child.stdin.write('stop\n');
      const s = await Promise.race([
        done,
        exited.then((code): ProbeSummary => {
          throw new Error(`handshake probe exited ${code} without a summary`);
        }),
      ]);
      await exited;
      return s;
    },
  };
}

/**
 * Handshakes answered with anything but 200 (an HTTP error, a refused or reset connection), by
 * status. Unanswered ones (`error timeout`, 20 s) are latency and are counted by `timeouts`.
 */
export function httpErrors(s: ProbeSummary): Record<string, number> {
  return Object.fromEntries(
    Object.entries(s.statuses).filter(([k]) => k !== '200' && k !== 'error timeout'),
  );
}

export function timeouts(s: ProbeSummary): number {
  return s.statuses['error timeout'] ?? 0;
}
