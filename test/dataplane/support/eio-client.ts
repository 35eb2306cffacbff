import http from 'node:http';
import WebSocket from 'ws';

/**
 * A bare Engine.IO v4 client that speaks the wire protocol itself (no socket.io-client), so the
 * conformance suite sees every packet exactly as the server and the gateway sent it: text
 * packets as strings ("0{...}", "2", "42[...]"), binary attachments as Buffers.
 */

export type Packet = string | Buffer;
export type Transport = 'polling' | 'websocket';

/** Record separator between the packets of one long-polling payload. */
const SEPARATOR = '\x1e';

export interface HttpReply {
  status: number;
  body: string;
}

export function httpRequest(
  url: string,
  options: { method?: string; body?: string; localAddress?: string } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'GET',
        localAddress: options.localAddress,
        headers: options.body !== undefined ? { 'content-type': 'text/plain;charset=UTF-8' } : {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

function decodePayload(body: string): Packet[] {
  return body
    .split(SEPARATOR)
    .map((p) => (p.startsWith('b') ? Buffer.from(p.slice(1), 'base64') : p));
}

function encodePayload(packets: Packet[]): string {
  return packets
    .map((p) => (typeof p === 'string' ? p : `b${p.toString('base64')}`))
    .join(SEPARATOR);
}

export interface SessionOptions {
  /** Answer every PING with a PONG (default true); pings are recorded either way. */
  autoPong?: boolean;
  localAddress?: string;
}

/** One Engine.IO session through `base` (http://host:port), on one transport. */
export class EioSession {
  /** Every packet received, in order, with its arrival time (PINGs included). */
  readonly log: { at: number; packet: Packet }[] = [];
  sid = '';
  open: Record<string, unknown> = {};
  closed = false;
  /** Why the session ended: ws close, a CLOSE packet, or an HTTP error on a poll. */
  closeReason = '';
  private readonly queue: Packet[] = [];
  private waiters: (() => void)[] = [];
  private ws: WebSocket | undefined;
  private polling = false;
  private posting: Promise<unknown> = Promise.resolve();
  autoPong: boolean;

  private constructor(
    readonly base: string,
    readonly transport: Transport,
    private readonly options: SessionOptions,
  ) {
    this.autoPong = options.autoPong ?? true;
  }

  static async open(
    base: string,
    transport: Transport,
    options: SessionOptions = {},
  ): Promise<EioSession> {
    const s = new EioSession(base, transport, options);
    if (transport === 'polling') {
      const reply = await httpRequest(`${base}/socket.io/?EIO=4&transport=polling`, {
        localAddress: options.localAddress,
      });
      if (reply.status !== 200) throw new Error(`handshake: HTTP ${reply.status} ${reply.body}`);
      const [first, ...rest] = decodePayload(reply.body);
      s.onOpenPacket(first as string);
      for (const p of rest) s.receive(p);
      s.startPolling();
    } else {
      const ws = new WebSocket(
        `${base.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
        {
          localAddress: options.localAddress,
        },
      );
      s.attachWebSocket(ws);
      const first = await s.next(5000);
      s.onOpenPacket(first as string);
    }
    return s;
  }

  private onOpenPacket(packet: string): void {
    if (typeof packet !== 'string' || !packet.startsWith('0'))
      throw new Error(`expected an OPEN packet, got ${String(packet)}`);
    this.open = JSON.parse(packet.slice(1)) as Record<string, unknown>;
    this.sid = String(this.open.sid);
  }

  private attachWebSocket(ws: WebSocket): void {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) =>
      this.receive(isBinary ? Buffer.from(data) : data.toString('utf8')),
    );
    ws.on('close', (code) => this.markClosed(`websocket closed (${code})`));
    ws.on('error', (err) => this.markClosed(`websocket error: ${err.message}`));
  }

  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    void (async () => {
      while (!this.closed && this.transport === 'polling' && this.ws === undefined) {
        let reply: HttpReply;
        try {
          reply = await httpRequest(this.url(), { localAddress: this.options.localAddress });
        } catch (err) {
          this.markClosed(`poll failed: ${String(err)}`);
          return;
        }
        if (reply.status !== 200) {
          this.markClosed(`poll answered HTTP ${reply.status}: ${reply.body}`);
          return;
        }
        for (const p of decodePayload(reply.body)) {
          // Once upgraded, the old transport's last poll ends with a NOOP or a CLOSE of that
          // transport only: recorded, not acted on.
          if (this.ws === undefined) this.receive(p);
          else this.log.push({ at: Date.now(), packet: p });
        }
      }
    })();
  }

  url(): string {
    return `${this.base}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(this.sid)}`;
  }

  private receive(packet: Packet): void {
    this.log.push({ at: Date.now(), packet });
    if (packet === '1') {
      this.markClosed('CLOSE packet');
      return;
    }
    if (packet === '2' && this.autoPong) {
      void this.send('3').catch(() => undefined);
      return;
    }
    if (packet === '2' || packet === '6') return;
    this.queue.push(packet);
    this.wake();
  }

  private markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Sends packets: one POST (one payload) on polling, one frame each on WebSocket. */
  async send(...packets: Packet[]): Promise<HttpReply | undefined> {
    if (this.ws) {
      for (const p of packets) this.ws.send(p);
      return undefined;
    }
    // One POST at a time, as real clients do: engine.io closes a session whose POSTs overlap.
    const sent = this.posting.then(() =>
      httpRequest(this.url(), {
        method: 'POST',
        body: encodePayload(packets),
        localAddress: this.options.localAddress,
      }),
    );
    this.posting = sent.catch(() => undefined);
    return sent;
  }

  /** The next packet that is not a PING or NOOP; rejects after `timeoutMs` or once closed. */
  async next(timeoutMs = 5000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.queue.shift();
      if (p !== undefined) return p;
      if (this.closed) throw new Error(`session closed (${this.closeReason}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves true once the session is closed, false if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      // Packets that arrive keep the queue going; closing is what we wait for.
      this.queue.length = 0;
    }
    return this.closed;
  }

  /** Packets queued and not read yet (PINGs excluded). */
  pending(): Packet[] {
    return [...this.queue];
  }

  /** Polling to WebSocket upgrade: probe, then UPGRADE; the pending poll ends with a NOOP. */
  async upgrade(): Promise<void> {
    const ws = new WebSocket(
      `${this.base.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(this.sid)}`,
      { localAddress: this.options.localAddress },
    );
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const probe = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data.toString('utf8')));
      ws.once('close', () => reject(new Error('websocket closed during the probe')));
      ws.send('2probe');
    });
    if (probe !== '3probe') throw new Error(`expected 3probe, got ${probe}`);
    ws.send('5');
    this.attachWebSocket(ws);
  }

  close(): void {
    this.closed = true;
    this.ws?.terminate();
  }
}

/** A Socket.IO connection to a namespace: sends CONNECT, returns the CONNECT reply. */
export async function connectNamespace(s: EioSession, nsp = '/', auth?: unknown): Promise<string> {
  const prefix = nsp === '/' ? '' : `${nsp},`;
  await s.send(`40${prefix}${auth === undefined ? '' : JSON.stringify(auth)}`);
  return (await s.next()) as string;
}
