import http from 'node:http';
import { Cluster } from 'ioredis';
import notepack from 'notepack.io';
import { io, type Socket } from 'socket.io-client';
import { logKeyOf } from '../../../server-image/src/adapter/recovery-keys.js';
import * as msgpackParser from 'socket.io-msgpack-parser';
import type { Socketfleet } from '../../../server-image/src/index.js';
import { sleep, until } from './fleet.js';
import { FIXTURE_USER, type RedisClusterFixture } from './redis-cluster.js';

/**
 * Traffic for connection-state recovery tests: one publisher (a library server, never
 * restarted) numbers each room's broadcasts, and real socket.io-clients behind the gateway
 * record every delivery with its offset, every (re)connect and whether it was recovered.
 */

export interface Tracked {
  socket: Socket;
  rooms: string[];
  /** Sequence numbers received per room, in arrival order. */
  got: Map<string, number[]>;
  /** socket.recovered at each connect after the first. */
  reconnects: boolean[];
  /** Binary attachments that arrived intact (the byte equals the sequence number's low byte). */
  binaryOk: number;
  binaryBad: number;
}

export interface Verdict {
  clients: number;
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  reordered: number;
  /** Arrivals in another order than their room's log holds them (what each server follows). */
  outOfLogOrder: number;
  recovered: number;
  notRecovered: number;
  binaryBad: number;
  samples: string[];
}

export class Publisher {
  readonly last = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: Socketfleet,
    readonly rooms: string[],
  ) {
    for (const r of rooms) this.last.set(r, 0);
  }

  /** Every `everyMs`, one broadcast per room (with a one-byte binary attachment). */
  start(everyMs: number): void {
    this.timer = setInterval(() => {
      for (const room of this.rooms) {
        const seq = this.last.get(room)! + 1;
        this.last.set(room, seq);
        this.server.io
          .to(room)
          .emit('message', { room, data: { seq, bin: Buffer.from([seq & 255]) } });
      }
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** A client through the gateway from its own /24 (the gateway hashes on it), joined to `rooms`. */
export async function trackedClient(
  url: string,
  n: number,
  rooms: string[],
  parser: 'msgpack' | 'json',
): Promise<Tracked> {
  const localAddress = `127.${60 + Math.floor(n / 250)}.${n % 250}.1`;
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    ...(parser === 'msgpack' ? { parser: msgpackParser } : {}),
    agent: new http.Agent({ localAddress }) as unknown as string,
  });
  const t: Tracked = { socket, rooms, got: new Map(), reconnects: [], binaryOk: 0, binaryBad: 0 };
  for (const r of rooms) t.got.set(r, []);
  socket.on('message', (payload: { room: string; data: { seq: number; bin: unknown } }) => {
    const seq = payload.data.seq;
    t.got.get(payload.room)?.push(seq);
    const bin = payload.data.bin;
    if (bin instanceof Uint8Array && bin.length === 1 && bin[0] === (seq & 255)) t.binaryOk++;
    else t.binaryBad++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  socket.on('connect', () => t.reconnects.push(socket.recovered));
  for (const room of rooms) {
    const reply = (await socket.timeout(10_000).emitWithAck('join', room)) as { ok: boolean };
    if (!reply.ok) throw new Error(`join ${room} failed: ${JSON.stringify(reply)}`);
  }
  return t;
}

/**
 * Every client must hold, per room, each sequence number from its first one to the last one
 * published, once and in order.
 */
export function verify(
  clients: Tracked[],
  publisher: Publisher,
  logOrder?: Map<string, Map<number, number>>,
): Verdict {
  const v: Verdict = {
    clients: clients.length,
    expected: 0,
    received: 0,
    lost: 0,
    duplicates: 0,
    reordered: 0,
    outOfLogOrder: 0,
    recovered: 0,
    notRecovered: 0,
    binaryBad: 0,
    samples: [],
  };
  clients.forEach((c, i) => {
    v.recovered += c.reconnects.filter(Boolean).length;
    v.notRecovered += c.reconnects.filter((r) => !r).length;
    v.binaryBad += c.binaryBad;
    for (const room of c.rooms) {
      const got = c.got.get(room)!;
      const last = publisher.last.get(room)!;
      if (got.length === 0) {
        v.lost += last;
        continue;
      }
      const first = got[0]!;
      const expected = last - first + 1;
      const unique = new Set(got);
      v.expected += expected;
      v.received += got.length;
      v.duplicates += got.length - unique.size;
      let lost = 0;
      for (let s = first; s <= last; s++) if (!unique.has(s)) lost++;
      if (lost > 0 && v.samples.length < 5) {
        const missing: number[] = [];
        for (let s = first; s <= last && missing.length < 6; s++)
          if (!unique.has(s)) missing.push(s);
        v.samples.push(`client ${i} ${room}: missing ${missing.join(',')} of ${first}..${last}`);
      }
      v.lost += lost;
      for (let k = 1; k < got.length; k++) if (got[k]! <= got[k - 1]!) v.reordered++;
      const order = logOrder?.get(room);
      if (order) {
        let previous = -1;
        for (const seq of got) {
          const at = order.get(seq);
          if (at === undefined) continue;
          if (at <= previous) v.outOfLogOrder++;
          previous = at;
        }
      }
    }
  });
  return v;
}

/** Waits until every connected client has each room's last published number (or times out). */
export async function settle(clients: Tracked[], publisher: Publisher, ms = 20_000): Promise<void> {
  await until(
    'every client to have every room up to its last broadcast',
    () =>
      clients.every((c) =>
        c.rooms.every((r) => (c.got.get(r)!.at(-1) ?? -1) >= publisher.last.get(r)!),
      ),
    ms,
  ).catch(() => undefined);
  await sleep(300);
}

/** Where each sequence number sits in its room's log (entries still retained). */
export async function logOrders(
  redis: RedisClusterFixture,
  rooms: string[],
): Promise<Map<string, Map<number, number>>> {
  const cluster = new Cluster(redis.seeds(), {
    redisOptions: { username: FIXTURE_USER, password: redis.password },
    dnsLookup: (address, callback) => callback(null, address),
  });
  try {
    const orders = new Map<string, Map<number, number>>();
    for (const room of rooms) {
      const entries = await cluster.xrangeBuffer(logKeyOf('/', room), '-', '+');
      const order = new Map<number, number>();
      entries.forEach(([, fields], i) => {
        const m = notepack.decode<{
          data: { packet: { data: [string, { data: { seq: number } }] } };
        }>(fields[1]!);
        order.set(m.data.packet.data[1].data.seq, i);
      });
      orders.set(room, order);
    }
    return orders;
  } finally {
    cluster.disconnect();
  }
}
