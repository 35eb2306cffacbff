import http from 'node:http';
import net from 'node:net';
import type { Histogram } from 'hdr-histogram-js';
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import WebSocket from 'ws';
import { roomOf, sourceAddress } from './addresses.js';
import { newHistogram, encodeHistogram } from './histogram.js';
import { extractTimestamp, makePayload, nowMs, roomName } from './payload.js';
import { dueCount, duePublishes, toMicros } from './schedule.js';
import type { FromWorker, ToWorker, WorkerConfig } from './protocol.js';

/**
 * One forked client process of `socketfleet bench`: opens its slice of room members and
 * publishers, records end-to-end latency and received bytes, and reports to the coordinator
 * once a second over IPC.
 */

const ACK_TIMEOUT_MS = 15_000;
const MAX_ERROR_SAMPLES = 5;

let config: WorkerConfig;
let hist: Histogram = newHistogram();
/** How late the generator sent each publish after its due time (microseconds). */
let lateness: Histogram = newHistogram();
let delivered = 0;
let sent = 0;
let errors = 0;
let disconnects = 0;
let stopping = false;
let runStart = 0;
const sockets = new Set<net.Socket>();
let closedBytes = 0;
const closers: (() => void)[] = [];
const errorSamples: string[] = [];

function send(msg: FromWorker): void {
  process.send?.(msg);
}

function sample(err: string): void {
  if (errorSamples.length < MAX_ERROR_SAMPLES && !errorSamples.includes(err))
    errorSamples.push(err);
}

/** One agent per client: it pins the source address and lets us count bytes on the wire. */
class CountingAgent extends http.Agent {
  constructor(private readonly localAddress: string | undefined) {
    super({ keepAlive: true });
  }
  override createConnection(
    options: net.NetConnectOpts,
    cb?: (err: Error | null, s: net.Socket) => void,
  ): net.Socket {
    const opts = { ...options } as net.TcpNetConnectOpts;
    if (this.localAddress !== undefined) opts.localAddress = this.localAddress;
    const s = net.createConnection(opts);
    s.setNoDelay(true);
    sockets.add(s);
    s.once('close', () => {
      closedBytes += s.bytesRead;
      sockets.delete(s);
    });
    if (cb) s.once('connect', () => cb(null, s));
    return s;
  }
}

function bytesRead(): number {
  let total = closedBytes;
  for (const s of sockets) total += s.bytesRead;
  return total;
}

function onMessage(msg: unknown): void {
  if (stopping) return;
  delivered++;
  const ts = extractTimestamp(msg);
  if (ts !== undefined) hist.recordValue(toMicros(nowMs() - ts));
}

interface Client {
  publish(room: string, payload: unknown): Promise<string | undefined>;
  join(room: string): Promise<string | undefined>;
}

function ackError(err: unknown, res: unknown): string | undefined {
  if (err) return `ack timed out after ${ACK_TIMEOUT_MS} ms`;
  if (typeof res === 'object' && res !== null) {
    const r = res as { ok?: unknown; error?: unknown };
    if (r.error !== undefined && r.error !== null) return `refused: ${JSON.stringify(r.error)}`;
    if (r.ok === false) return 'refused';
  }
  return undefined;
}

function openSocketIo(addressIndex: number, room: string, member: boolean): Promise<Client> {
  const local = config.spreadSources ? sourceAddress(addressIndex) : undefined;
  const query = config.roomQuery ? { [config.roomKey]: room } : undefined;
  const socket: Socket = io(config.url, {
    path: config.path,
    transports: config.transports,
    agent: new CountingAgent(local) as unknown as string,
    reconnection: false,
    forceNew: true,
    timeout: 20_000,
    ...(query ? { query } : {}),
    ...(config.parser === 'msgpack' ? { parser: msgpackParser } : {}),
  });
  closers.push(() => socket.disconnect());
  if (member) socket.on(config.event, onMessage);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.on('disconnect', (reason) => {
        if (!stopping) {
          disconnects++;
          sample(`disconnected: ${reason}`);
        }
      });
      resolve({
        join: (r) =>
          new Promise((res) => {
            socket
              .timeout(ACK_TIMEOUT_MS)
              .emit('join', r, (err: unknown, ack: unknown) => res(ackError(err, ack)));
          }),
        publish: (r, data) =>
          new Promise((res) => {
            socket
              .timeout(ACK_TIMEOUT_MS)
              .emit('publish', { room: r, data }, (err: unknown, ack: unknown) =>
                res(ackError(err, ack)),
              );
          }),
      });
    });
    socket.once('connect_error', (err) => {
      socket.disconnect();
      reject(err);
    });
  });
}

function openWs(addressIndex: number, room: string, member: boolean): Promise<Client> {
  const local = config.spreadSources ? sourceAddress(addressIndex) : undefined;
  const u = new URL(config.url.replace(/^http/, 'ws'));
  if (member) u.searchParams.set('room', room);
  const ws = new WebSocket(u, { agent: new CountingAgent(local), perMessageDeflate: false });
  closers.push(() => ws.terminate());
  if (member) {
    ws.on('message', (data: Buffer) => onMessage(JSON.parse(data.toString('utf8'))));
  }
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.on('close', () => {
        if (!stopping) {
          disconnects++;
          sample('disconnected: close');
        }
      });
      resolve({
        join: () => Promise.resolve(undefined),
        publish: (r, data) => {
          ws.send(JSON.stringify({ type: 'publish', room: r, data }));
          return Promise.resolve(undefined);
        },
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Members join `room`; a publisher only names it in the handshake (room-affinity routing). */
function open(addressIndex: number, room: string, member: boolean): Promise<Client> {
  return config.protocol === 'ws'
    ? openWs(addressIndex, room, member)
    : openSocketIo(addressIndex, room, member);
}

async function connectAll(): Promise<void> {
  let connected = 0;
  let failed = 0;
  let joinFailed = 0;
  const members = new Array<number>(config.rooms).fill(0);
  let next = 0;
  const progress = setInterval(
    () => send({ type: 'progress', workerId: config.workerId, connected, failed }),
    500,
  );
  const rampStart = nowMs();
  const lane = async (): Promise<void> => {
    while (next < config.clientCount) {
      const k = next++;
      const index = config.firstClient + k;
      // Paced ramp: connection k of this worker starts no earlier than k / rate after the start.
      const wait =
        config.rampPerSecond > 0 ? rampStart + (k * 1000) / config.rampPerSecond - nowMs() : 0;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const roomIndex = roomOf(index, config.rooms);
      const room = roomName(roomIndex);
      try {
        const client = await open(index, room, true);
        connected++;
        const err = await client.join(room);
        if (err === undefined) members[roomIndex]!++;
        else {
          joinFailed++;
          sample(`join: ${err}`);
        }
      } catch (err) {
        failed++;
        sample(`connect: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: config.rampConcurrency }, () => lane()));
  clearInterval(progress);
  for (const p of config.publishers) {
    try {
      publisherClients.set(
        p,
        await open(config.publisherAddressBase + p, roomName(p % config.rooms), false),
      );
    } catch (err) {
      failed++;
      sample(`publisher connect: ${(err as Error).message}`);
    }
  }
  send({
    type: 'ready',
    workerId: config.workerId,
    connected,
    failed,
    joinFailed,
    members,
    errorSamples: [...errorSamples],
  });
}

const publisherClients = new Map<number, Client>();

function tick(): void {
  const msg: FromWorker = {
    type: 'tick',
    workerId: config.workerId,
    t: runStart === 0 ? -1 : Math.round((nowMs() - runStart) / 1000),
    delivered,
    bytesRead: bytesRead(),
    sent,
    errors,
    disconnects,
    hist: encodeHistogram(hist),
    lateness: encodeHistogram(lateness),
  };
  hist = newHistogram();
  lateness = newHistogram();
  send(msg);
}

function publishAll(durationMs: number): void {
  const sentPerRoom = new Array<number>(config.rooms).fill(0);
  let refused = 0;
  const counts = new Map<number, number>();
  const pending = new Set<Promise<void>>();
  const total = dueCount(durationMs, durationMs, config.publisherRate);
  const timer = setInterval(() => {
    const now = nowMs();
    const elapsed = now - runStart;
    for (const [p, client] of publisherClients) {
      let n = counts.get(p) ?? 0;
      for (const dueTime of duePublishes(n, runStart, now, durationMs, config.publisherRate)) {
        const roomIndex = (p + n * config.totalPublishers) % config.rooms;
        const room = roomName(roomIndex);
        sent++;
        lateness.recordValue(toMicros(now - dueTime));
        const done = client
          .publish(room, makePayload(config.payloadBytes, p, n, room, dueTime))
          .then((err) => {
            if (err === undefined) sentPerRoom[roomIndex]!++;
            else {
              refused++;
              errors++;
              sample(`publish: ${err}`);
            }
          });
        pending.add(done);
        void done.finally(() => pending.delete(done));
        n++;
      }
      counts.set(p, n);
    }
    if (
      dueCount(elapsed, durationMs, config.publisherRate) >= total ||
      elapsed >= durationMs + 1000
    ) {
      clearInterval(timer);
      void Promise.all([...pending]).then(() =>
        send({
          type: 'published',
          workerId: config.workerId,
          sentPerRoom,
          refused,
          errorSamples: [...errorSamples],
        }),
      );
    }
  }, 5);
}

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    config = msg.config;
    connectAll().catch((err: unknown) => {
      sample(`worker: ${(err as Error).message}`);
      process.exitCode = 1;
    });
  } else if (msg.type === 'run') {
    const wait = Math.max(0, msg.startAt - nowMs());
    setTimeout(() => {
      runStart = msg.startAt;
      tick();
      setInterval(tick, 1000).unref();
      publishAll(msg.durationMs);
    }, wait);
  } else {
    tick();
    stopping = true;
    for (const close of closers) close();
    send({ type: 'done', workerId: config.workerId });
    setTimeout(() => process.exit(0), 200).unref();
  }
});

process.on('disconnect', () => process.exit(0));
