import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Namespace, Server, Socket } from 'socket.io';
import type { ServerMetrics } from './metrics.js';

type Middleware = (socket: Socket, next: (err?: Error) => void) => void;

/** Distinct event names that get a metric label of their own; any app's later names share one. */
const MAX_EVENT_LABELS = 100;

export interface NamespaceCare {
  metrics: ServerMetrics;
  /** Runs first on every namespace (the operator's client authentication), or none. */
  auth: Middleware | undefined;
  keepHttpRequest: boolean;
  /** Called for every client event in any namespace (the periodic traffic log counts them). */
  onEvent?: () => void;
}

/**
 * What every namespace of the server gets, static or dynamic, whenever it is created: the
 * cluster's client authentication before any middleware of the app, the events-in metric, and
 * the release of the handshake request. Socket.IO creates a dynamic namespace (a child of
 * `io.of(/regex/)`) on the first client connection to it, so this hooks `new_namespace` rather
 * than the namespaces that exist when attach() runs (it covers those too).
 */
export function careForEveryNamespace(io: Server, care: NamespaceCare): void {
  const labels = new Set<string>();
  const label = (event: unknown): string => {
    const name = typeof event === 'string' ? event : 'other';
    if (labels.has(name)) return name;
    if (labels.size >= MAX_EVENT_LABELS) return 'other';
    labels.add(name);
    return name;
  };
  // One middleware shared by every socket, not a closure per connection.
  const countEvent = (packet: unknown[], next: (err?: Error) => void): void => {
    care.metrics.eventsIn.inc({ event: label(packet[0]) });
    care.onEvent?.();
    next();
  };
  const onConnection = (socket: Socket): void => {
    socket.use(countEvent);
    if (!care.keepHttpRequest) slimRequest(socket);
  };
  const setUp = (nsp: Namespace): void => {
    if (care.auth) {
      // First in line, ahead of the app's own middleware (a dynamic child copies its parent's
      // middleware before it is announced), so no app code sees an unauthenticated socket.
      const fns = (nsp as unknown as { _fns: Middleware[] })._fns;
      fns.unshift(care.auth);
    }
    // Ahead of the app's connection handlers, so the metric's socket.use runs before the app's own;
    // the request is slimmed only after those handlers ran (slimRequest waits for the tick's end).
    nsp.prependListener('connection', onConnection);
  };
  for (const nsp of (io as unknown as { _nsps: Map<string, Namespace> })._nsps.values()) setUp(nsp);
  io.on('new_namespace', setUp);
}

/**
 * Socket.IO keeps each session's first HTTP request (about 4 KB with its socket references) for
 * the life of the connection. Once the namespace's middleware and connection handlers have run
 * (the end of this tick), it is replaced with what a later namespace's handshake reads from it:
 * headers, url and query. Setting it to null instead left a second namespace joined on the same
 * connection with empty headers and query.
 */
function slimRequest(socket: Socket): void {
  const conn = socket.conn as unknown as { request: IncomingMessage | SlimRequest | null };
  const request = conn.request;
  if (request === null || isSlim(request)) return;
  process.nextTick(() => {
    if (conn.request !== request) return;
    const slim: SlimRequest = {
      slim: true,
      headers: request.headers,
      url: request.url,
      method: request.method,
      _query: (request as unknown as { _query?: unknown })._query,
      connection: { encrypted: Boolean((request.socket as { encrypted?: boolean }).encrypted) },
    };
    conn.request = slim;
  });
}

const UPGRADE_RESPONSE = Symbol('socketfleet.upgradeResponse');

interface UpgradeResponse {
  req?: unknown;
  setHeader?: unknown;
  getHeader?: unknown;
  removeHeader?: unknown;
}

const noHeader = (): undefined => undefined;

/**
 * engine.io answers a WebSocket upgrade with a stand-in response that stays referenced by the TCP
 * socket (a 'close' listener) for the connection's life, and it holds the upgrade's HTTP request:
 * about 3 KB per connection (the request is in dictionary mode), whether or not the session's
 * first request is kept, and for a polling client that upgraded it is a second request. Once the
 * engine emits 'headers' for the upgrade (it has taken the headers middleware set, and ws writes
 * the 101 response next), the stand-in has no more use: it lets go of the request and ignores
 * headers. The engine's own event, not ws's: the engine replaces its ws server on 'listening'.
 */
export function releaseUpgradeRequests(io: Server): void {
  const engine = io.engine as unknown as {
    use(fn: (req: IncomingMessage, res: object, next: (err?: unknown) => void) => void): void;
    on(event: 'headers', fn: (headers: unknown, req: IncomingMessage) => void): void;
  };
  engine.use((req, res, next) => {
    if (!(res instanceof ServerResponse))
      (req as unknown as Record<symbol, unknown>)[UPGRADE_RESPONSE] = res;
    next();
  });
  engine.on('headers', (_headers, req) => {
    const slot = req as unknown as Record<symbol, UpgradeResponse | undefined>;
    const res = slot[UPGRADE_RESPONSE];
    if (res === undefined) return;
    slot[UPGRADE_RESPONSE] = undefined;
    res.req = undefined;
    res.setHeader = noHeader;
    res.getHeader = noHeader;
    res.removeHeader = noHeader;
  });
}

interface SlimRequest {
  slim: true;
  headers: IncomingMessage['headers'];
  url: string | undefined;
  method: string | undefined;
  _query: unknown;
  connection: { encrypted: boolean };
}

function isSlim(request: object): request is SlimRequest {
  return (request as { slim?: unknown }).slim === true;
}
