import { readFileSync } from 'node:fs';
import net from 'node:net';

/** The lowest port a `socketfleet up` picks; below it are well-known services' ports. */
const LOWEST_PICK = 10_000;
const handedOut = new Set<number>();

/**
 * A free loopback port below the kernel's ephemeral range when there is room for one: a port
 * the kernel hands out (listen on 0) can be taken by an outgoing connection's local port before
 * the process meant for it binds it, which failed a server with EADDRINUSE among 50 servers and
 * 3000 clients (bench --at-scale). No outgoing connection ever gets a port below that range.
 * Each port is handed out once per process. Falls back to the kernel's pick.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const low = ephemeralLow();
  if (low !== undefined && low - LOWEST_PICK >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = LOWEST_PICK + Math.floor(Math.random() * (low - LOWEST_PICK));
      if (handedOut.has(port) || !(await canListen(port, host))) continue;
      handedOut.add(port);
      return port;
    }
  }
  return kernelPort(host);
}

/** The first port of the kernel's ephemeral range, or undefined where it cannot be read. */
export function ephemeralLow(): number | undefined {
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 0 ? low : undefined;
  } catch {
    return undefined;
  }
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A port the kernel just handed out on loopback; free unless someone races us for it. */
function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Polls until check() is true; the error names what did not become ready. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  alive?: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (alive && !alive()) throw new Error(`${what} exited before it became ready.`);
    if (Date.now() > deadline)
      throw new Error(`${what} did not become ready within ${Math.round(timeoutMs / 1000)} s.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
