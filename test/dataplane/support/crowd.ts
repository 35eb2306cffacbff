import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';
import {
  roomOfClient,
  type ClientRecord,
  type CrowdWorkerConfig,
  type FromCrowdWorker,
  type ToCrowdWorker,
} from './crowd-protocol.js';
import { sleep, until } from './fleet.js';

/** Disconnect reasons that are the server's orderly doing (a drain) or the test's own. */
const ORDERLY = new Set(['transport close', 'io client disconnect']);

interface Worker {
  child: ChildProcess;
  connected: number;
  joined: number;
}

/**
 * Thousands of real socket.io-clients in forked processes (a few thousand per process keep the
 * test process free to drive the fleet), each from its own 127.X.Y.1 address so the gateway's
 * hash sees distinct clients.
 */
export class Crowd {
  private readonly workers: Worker[] = [];

  constructor(
    private readonly url: string,
    readonly total: number,
    private readonly opts: {
      processes?: number;
      rooms: number;
      pollingEvery?: number;
      /** Index of the first client: crowds started one after another get distinct addresses. */
      firstIndex?: number;
    },
  ) {}

  get rooms(): number {
    return this.opts.rooms;
  }

  start(): void {
    const n = this.opts.processes ?? 3;
    const per = Math.ceil(this.total / n);
    for (let w = 0; w < n; w++) {
      const config: CrowdWorkerConfig = {
        url: this.url,
        first: (this.opts.firstIndex ?? 0) + w * per,
        count: Math.min(per, this.total - w * per),
        rooms: this.opts.rooms,
        pollingEvery: this.opts.pollingEvery ?? 0,
        addressBase: 1000,
      };
      const child = fork(join(import.meta.dirname, 'crowd-worker.ts'), [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      const worker: Worker = { child, connected: 0, joined: 0 };
      child.on('message', (msg: FromCrowdWorker) => {
        if (msg.type === 'progress') {
          worker.connected = msg.connected;
          worker.joined = msg.joined;
        }
      });
      child.send({ type: 'start', config } satisfies ToCrowdWorker);
      this.workers.push(worker);
    }
  }

  /** Process ids of the worker processes (for CPU accounting). */
  pids(): number[] {
    return this.workers.flatMap((w) => (w.child.pid === undefined ? [] : [w.child.pid]));
  }

  joined(): number {
    return this.workers.reduce((a, w) => a + w.joined, 0);
  }

  async waitAllJoined(timeoutMs = 120_000): Promise<void> {
    await until(
      `all ${this.total} clients connected and joined (${this.joined()} so far)`,
      () => this.joined() === this.total,
      timeoutMs,
    );
  }

  /** Every client's record so far. */
  async report(): Promise<ClientRecord[]> {
    const parts = await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<ClientRecord[]>((resolve) => {
            const on = (msg: FromCrowdWorker): void => {
              if (msg.type !== 'report') return;
              w.child.off('message', on);
              resolve(msg.clients);
            };
            w.child.on('message', on);
            w.child.send({ type: 'report' } satisfies ToCrowdWorker);
          }),
      ),
    );
    return parts.flat();
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.child.exitCode !== null) return;
        const gone = new Promise((r) => w.child.once('exit', r));
        w.child.disconnect();
        const timer = setTimeout(() => w.child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }),
    );
  }
}

export interface Publish {
  room: string;
  seq: number;
  at: number;
  ok: boolean;
}

/**
 * Publishes to every room in turn through the gateway, numbering each room's messages. Only
 * publishes the server acknowledged count as sent; it reconnects like any client.
 */
export class Publisher {
  readonly log: Publish[] = [];
  private readonly socket: Socket;
  private timer: NodeJS.Timeout | undefined;
  private readonly seq = new Map<string, number>();

  constructor(url: string, rooms: number, perSecond: number) {
    this.socket = io(url, {
      transports: ['websocket'],
      parser: msgpackParser,
      forceNew: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      agent: new http.Agent({ localAddress: '127.0.0.2' }) as unknown as string,
    });
    let next = 0;
    this.timer = setInterval(
      () => {
        if (!this.socket.connected) return;
        const room = roomOfClient(next++ % rooms, rooms);
        const seq = (this.seq.get(room) ?? 0) + 1;
        this.seq.set(room, seq);
        const entry: Publish = { room, seq, at: Date.now(), ok: false };
        this.log.push(entry);
        this.socket
          .timeout(5000)
          .emit('publish', { room, data: { seq } }, (err: unknown, ack: { ok?: boolean }) => {
            entry.ok = !err && ack.ok === true;
          });
      },
      Math.round(1000 / perSecond),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.socket.close();
  }
}

export interface PhaseResult {
  clients: number;
  /** Clients that were disconnected at least once in the window. */
  moved: number;
  movedPolling: number;
  pollingClients: number;
  /** Connect errors and disconnects a client saw that were not an orderly server drain. */
  errors: number;
  errorsPolling: number;
  /** Errors of clients that were not moved (polling or not): what "the others" saw. */
  errorsUnmoved: number;
  errorSamples: string[];
  /** Reconnections in the busiest second of the window. */
  peakReconnectsPerSecond: number;
  /** Acknowledged publishes that clients connected throughout the window did not receive. */
  lostUnmoved: number;
  /** The same for moved clients, their time away included. */
  lostMoved: number;
  /** Deliveries the unmoved clients were owed (so a zero above means something). */
  expectedUnmoved: number;
  /** Of lostUnmoved, what polling-only clients missed. */
  lostUnmovedPolling: number;
  /** Joins in the window acknowledged without the subscription promise. */
  unsubscribedJoins: number;
  /** Moved clients by transports (websocket, polling+websocket, polling). */
  movedBy: Record<string, number>;
  /** Errors by transports. */
  errorsBy: Record<string, number>;
  /**
   * ms from `from` until the last moved client was connected again after its first disconnect
   * in the window (0: nobody moved; Infinity: one never came back). A later, unrelated move of
   * the same client does not stretch it.
   */
  allBackAfterMs: number;
  /** The same, per transports of the moved clients. */
  backAfterMsBy: Record<string, number>;
  /** The 95th percentile of the moved clients' times back. */
  p95BackAfterMs: number;
}

/**
 * Exact counts for the window [from, to]: `to` should lie a second or two before the report,
 * so every publish acknowledged before it had time to arrive.
 */
export function analyse(
  records: ClientRecord[],
  pubs: Publish[],
  from: number,
  to: number,
): PhaseResult {
  const inWindow = (t: number): boolean => t >= from && t <= to;
  const byRoom = new Map<string, Publish[]>();
  for (const p of pubs) {
    if (!p.ok || !inWindow(p.at)) continue;
    const list = byRoom.get(p.room) ?? [];
    list.push(p);
    byRoom.set(p.room, list);
  }
  const perSecond = new Map<number, number>();
  const r: PhaseResult = {
    clients: records.length,
    moved: 0,
    movedPolling: 0,
    pollingClients: records.filter((c) => c.polling).length,
    errors: 0,
    errorsPolling: 0,
    errorsUnmoved: 0,
    errorSamples: [],
    peakReconnectsPerSecond: 0,
    lostUnmoved: 0,
    lostMoved: 0,
    expectedUnmoved: 0,
    lostUnmovedPolling: 0,
    unsubscribedJoins: 0,
    movedBy: {},
    errorsBy: {},
    allBackAfterMs: 0,
    backAfterMsBy: {},
    p95BackAfterMs: 0,
  };
  const backs: number[] = [];
  for (const c of records) {
    const moved = c.disconnects.some((d) => inWindow(d.at));
    const errs = [
      ...c.connectErrors.filter((e) => inWindow(e.at)).map((e) => `connect_error: ${e.message}`),
      ...c.disconnects
        .filter((d) => inWindow(d.at) && !ORDERLY.has(d.reason))
        .map((d) => `disconnect: ${d.reason}`),
    ];
    if (c.polling) r.errorsPolling += errs.length;
    else r.errors += errs.length;
    if (!moved) r.errorsUnmoved += errs.length;
    if (errs.length > 0) r.errorsBy[c.transports] = (r.errorsBy[c.transports] ?? 0) + errs.length;
    if (moved) {
      const left = Math.min(...c.disconnects.filter((d) => inWindow(d.at)).map((d) => d.at));
      const again = c.connects.find((t) => t >= left);
      const back = again === undefined ? Infinity : again - from;
      backs.push(back);
      r.allBackAfterMs = Math.max(r.allBackAfterMs, back);
      r.backAfterMsBy[c.transports] = Math.max(r.backAfterMsBy[c.transports] ?? 0, back);
    }
    for (const e of errs)
      if (r.errorSamples.length < 5 && !r.errorSamples.includes(e)) r.errorSamples.push(e);
    // The first connect is not a reconnection.
    for (const t of c.connects.slice(1)) {
      if (!inWindow(t)) continue;
      const s = Math.floor(t / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    }
    if (moved) {
      r.moved++;
      if (c.polling) r.movedPolling++;
      r.movedBy[c.transports] = (r.movedBy[c.transports] ?? 0) + 1;
    }
    r.unsubscribedJoins += c.unsubscribed > 0 && c.joins.some(inWindow) ? c.unsubscribed : 0;
    const joinedBefore = c.joins.some((t) => t < from);
    const lastDisconnectBefore = Math.max(
      0,
      ...c.disconnects.filter((d) => d.at < from).map((d) => d.at),
    );
    const lastJoinBefore = Math.max(0, ...c.joins.filter((t) => t < from));
    if (!joinedBefore || lastJoinBefore < lastDisconnectBefore) continue;
    const got = new Set(c.received);
    let lost = 0;
    const owed = byRoom.get(c.room) ?? [];
    for (const p of owed) if (!got.has(p.seq)) lost++;
    if (moved) r.lostMoved += lost;
    else {
      r.lostUnmoved += lost;
      if (c.polling) r.lostUnmovedPolling += lost;
      r.expectedUnmoved += owed.length;
    }
  }
  r.peakReconnectsPerSecond = Math.max(0, ...perSecond.values());
  backs.sort((a, b) => a - b);
  r.p95BackAfterMs = backs.length === 0 ? 0 : backs[Math.ceil(backs.length * 0.95) - 1]!;
  return r;
}

/** Waits until every client of the crowd is connected and joined again. */
export async function settled(crowd: Crowd, timeoutMs = 60_000): Promise<void> {
  await crowd.waitAllJoined(timeoutMs);
  await sleep(200);
}
