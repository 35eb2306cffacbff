import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'socket.io';

/** Longest wait one tick of the drain may leave between two disconnects. */
const MAX_TICK_MS = 250;
const MIN_TICK_MS = 10;

/** Defaults of the preStop wait when the request names no bounds. */
export const PRESTOP_QUIET_MS = 2000;
export const PRESTOP_MAX_MS = 5000;
/** Ceiling on the bounds a request may ask for, so a scraper cannot park requests for long. */
const PRESTOP_LIMIT_MS = 60_000;

/** Past the window, how long a long-polling connection may wait for a moment it can be closed cleanly. */
const POLLING_CLOSE_WAIT_MS = 2000;

interface EngineConnection {
  close(): void;
  transport?: { name?: string; writable?: boolean; dataReq?: unknown };
}

/**
 * A long-polling connection is closed cleanly only while the client's poll is waiting (the close
 * packet goes out in its answer) and no post of the client is being read: engine.io would abort
 * that post, and a post or poll arriving after the close gets "Session ID unknown", both of which
 * the client reports as a transport error instead of the orderly close (63 of 300 long-polling
 * clients in a 3000-client rolling restart). A client polls again the moment an answer arrives,
 * so such a moment comes within milliseconds.
 */
function closableNow(c: EngineConnection): boolean {
  const t = c.transport;
  return t?.name !== 'polling' || (t.writable === true && t.dataReq == null);
}

/**
 * Disconnects every engine.io connection of the server, spread evenly over `windowMs`. Working on
 * engine.io connections rather than on one namespace's sockets covers every namespace, dynamic
 * ones included, and clients that have not joined a namespace yet: closing the connection ends
 * all of its namespaces, and the client reconnects on its own (to another server, since this one
 * refuses new sessions while it drains). A long-polling connection due at a moment it cannot be
 * closed cleanly waits for the next tick (see closableNow), at most POLLING_CLOSE_WAIT_MS past
 * the window.
 */
export async function spreadDisconnects(io: Server, windowMs: number): Promise<number> {
  // engine.io's map of open connections; its typings mark it protected, but it is the one list
  // that spans every namespace.
  const engine = io.engine as unknown as { clients: Record<string, EngineConnection> };
  const connections = Object.values(engine.clients);
  const tickMs =
    windowMs <= 0 || connections.length === 0
      ? MIN_TICK_MS
      : Math.max(MIN_TICK_MS, Math.min(MAX_TICK_MS, Math.floor(windowMs / connections.length)));
  const ticks = Math.max(1, Math.floor(Math.max(0, windowMs) / tickMs));
  const perTick = windowMs <= 0 ? connections.length : Math.ceil(connections.length / ticks);
  const deferred = new Set<EngineConnection>();
  const closeOrDefer = (c: EngineConnection, force: boolean): void => {
    if (force || closableNow(c)) {
      deferred.delete(c);
      c.close();
    } else deferred.add(c);
  };
  let next = 0;
  let windowEnd: number | undefined;
  await new Promise<void>((resolve) => {
    const tick = (): boolean => {
      const force = windowEnd !== undefined && Date.now() - windowEnd > POLLING_CLOSE_WAIT_MS;
      for (const c of [...deferred]) closeOrDefer(c, force);
      for (const end = Math.min(connections.length, next + perTick); next < end; next++) {
        closeOrDefer(connections[next]!, force);
      }
      if (next >= connections.length) windowEnd ??= Date.now();
      return next >= connections.length && deferred.size === 0;
    };
    // Without a window everything is due at once; otherwise the first batch goes after one tick.
    if ((windowMs <= 0 || connections.length === 0) && tick()) {
      resolve();
      return;
    }
    const timer = setInterval(() => {
      if (!tick()) return;
      clearInterval(timer);
      resolve();
    }, tickMs);
  });
  return connections.length;
}

/**
 * Refuses a new session while draining so that the gateway tries another server. A polling
 * handshake gets engine.io's 403, which nginx retries; engine.io answers a refused WebSocket
 * handshake with a 400 that nginx may not retry, so that connection is closed before any answer
 * instead, which nginx treats as a failed server and retries.
 */
export function refuseWhileDraining(req: IncomingMessage): void {
  if (req.headers.upgrade !== undefined) req.socket.destroy();
}

/**
 * When the last new session arrived, for the pod's preStop hook: Kubernetes takes a terminating
 * pod out of its EndpointSlices at once, but the gateway needs a moment to stop choosing it. Until
 * then the server keeps accepting sessions normally; the hook returns once none arrived for a
 * quiet period, and only then does the kubelet send SIGTERM and the drain begin.
 */
export class NewSessionClock {
  private last = 0;

  noteHandshake(now = Date.now()): void {
    this.last = now;
  }

  /** Resolves with the wait in ms once no handshake arrived for `quietMs`, or after `maxMs`. */
  async waitQuiet(quietMs: number, maxMs: number): Promise<{ waitedMs: number; quiet: boolean }> {
    const start = Date.now();
    for (;;) {
      const now = Date.now();
      const since = now - Math.max(this.last, start);
      if (since >= quietMs) return { waitedMs: now - start, quiet: true };
      if (now - start >= maxMs) return { waitedMs: now - start, quiet: false };
      await new Promise((r) => setTimeout(r, Math.min(100, quietMs - since)));
    }
  }

  /** `GET /prestop?quietMs=&maxMs=` on the ops port: waits, then answers 200 with the outcome. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://ops');
    const bound = (name: string, fallback: number): number => {
      const v = Number(url.searchParams.get(name) ?? fallback);
      return Number.isFinite(v) ? Math.max(0, Math.min(PRESTOP_LIMIT_MS, v)) : fallback;
    };
    const quietMs = bound('quietMs', PRESTOP_QUIET_MS);
    const maxMs = bound('maxMs', PRESTOP_MAX_MS);
    void this.waitQuiet(quietMs, maxMs).then(({ waitedMs, quiet }) => {
      res
        .writeHead(200, { 'content-type': 'text/plain' })
        .end(
          quiet
            ? `no new session for ${quietMs} ms (waited ${waitedMs} ms)\n`
            : `new sessions still arriving after ${waitedMs} ms\n`,
        );
    });
  }
}
