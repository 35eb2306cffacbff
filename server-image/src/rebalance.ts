import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'socket.io';
import { KetamaRing } from './ketama.js';
import type { Logger } from './logger.js';

/** Longest spread a caller may ask for: past that the servers list it was based on is stale. */
const MAX_SPREAD_MS = 600_000;
const MAX_BODY = 256 * 1024;

interface RebalanceRequest {
  /** This server as the gateway lists it (`ip:port`). */
  self: string;
  /** Every ready server as the gateway lists it, this one included. */
  servers: string[];
  /** At most this many clients are closed. */
  max: number;
  /** The closes are spread evenly over this window, so the new servers take the load gradually. */
  spreadMs: number;
}

function parse(body: string): RebalanceRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return 'the body must be JSON';
  }
  const r = v as Partial<RebalanceRequest>;
  if (typeof r.self !== 'string') return 'self must be the ip:port of this server';
  if (!Array.isArray(r.servers) || !r.servers.every((s) => typeof s === 'string'))
    return 'servers must be a list of ip:port strings';
  if (!r.servers.includes(r.self)) return 'servers must include self';
  if (!Number.isInteger(r.max) || (r.max ?? -1) < 0) return 'max must be a non-negative integer';
  if (!Number.isInteger(r.spreadMs) || (r.spreadMs ?? -1) < 0 || (r.spreadMs ?? 0) > MAX_SPREAD_MS)
    return `spreadMs must be an integer from 0 to ${MAX_SPREAD_MS}`;
  return r as RebalanceRequest;
}

/**
 * POST /rebalance on the ops port: closes (spread over a window) the connections of clients that
 * the gateway's consistent hash on the client address now sends to another server, so each
 * reconnects straight to its new home and nobody moves twice. The key is the address nginx saw
 * (X-Real-IP, set by the gateway); a client without it is never moved. The engine connection is
 * closed rather than the socket disconnected, so the client reconnects on its own ("transport
 * close"), and with connection state recovery it gets what it missed.
 */
export function createRebalancer(
  io: Server,
  logger?: Logger,
): { handle(req: IncomingMessage, res: ServerResponse): void } {
  let busy = false;
  const answer = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
  };
  return {
    handle(req, res) {
      if (req.method !== 'POST') {
        answer(res, 405, { error: 'use POST' });
        return;
      }
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
        if (body.length > MAX_BODY) req.destroy();
      });
      req.on('end', () => {
        const r = parse(body);
        if (typeof r === 'string') {
          answer(res, 400, { error: r });
          return;
        }
        if (busy) {
          answer(res, 409, { error: 'a rebalance is already running' });
          return;
        }
        const ring = new KetamaRing(r.servers.map((server) => ({ server })));
        const misplaced: { close(): void }[] = [];
        for (const socket of io.of('/').sockets.values()) {
          const key = socket.handshake.headers['x-real-ip'];
          if (typeof key !== 'string') continue;
          if (ring.owner(key) !== r.self) misplaced.push(socket.conn);
        }
        const shed = misplaced.slice(0, r.max);
        answer(res, 200, { misplaced: misplaced.length, shedding: shed.length });
        logger?.info(
          { misplaced: misplaced.length, shedding: shed.length, spreadMs: r.spreadMs },
          'rebalancing: closing clients whose hash moved to another server',
        );
        if (shed.length === 0) return;
        busy = true;
        shed.forEach((conn, i) => {
          setTimeout(
            () => {
              conn.close();
              if (i === shed.length - 1) busy = false;
            },
            Math.floor((i * r.spreadMs) / shed.length),
          ).unref();
        });
      });
    },
  };
}
