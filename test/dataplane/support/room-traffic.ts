// Room traffic for the cost measurements (test/bench/recovery-cost.ts,
// test/dataplane/support/measure-fast-paths.ts): clients joined to rooms on chosen servers, an
// open-loop publisher, and what the deliveries cost.
import { readFileSync } from 'node:fs';
import { duePublishes } from '../../../operator/bench/schedule.js';
import { connect, type Client } from './clients.js';
import { sleep, until, type ServerProcess } from './fleet.js';

/** User plus system CPU seconds of a process so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface RoomClients {
  clients: Client[];
  rooms: number;
  /** Messages received by every client so far. */
  delivered(): number;
  /** Each delivery's latency from its due time, in milliseconds. */
  latencies: number[];
}

/**
 * Connects `count` clients; client i joins room `i % rooms` on the server `serverOf(i, room)`
 * picks, and counts what it receives.
 */
export async function joinRoomClients(
  servers: ServerProcess[],
  count: number,
  rooms: number,
  serverOf: (i: number, room: number) => number,
): Promise<RoomClients> {
  const clients: Client[] = [];
  const latencies: number[] = [];
  let delivered = 0;
  for (let i = 0; i < count; i++) {
    const room = i % rooms;
    const c = await connect(servers[serverOf(i, room)]!.url);
    c.on('message', (m: { data: { t: number } }) => {
      delivered++;
      latencies.push(performance.now() - m.data.t);
    });
    await c.emitWithAck('join', `room-${room}`);
    clients.push(c);
  }
  return { clients, rooms, delivered: () => delivered, latencies };
}

/**
 * Publishes `rate` messages/s for `seconds` from the clients in turn, each stamped with its due
 * time (open loop: a generator that falls behind shows up in the latency), then waits up to 30 s
 * for every member to have them. Returns how many were published and how many deliveries were
 * owed.
 */
export async function publishOpenLoop(
  load: RoomClients,
  rate: number,
  seconds: number,
  payload: string,
): Promise<{ total: number; expected: number }> {
  const { clients, rooms } = load;
  const durationMs = seconds * 1000;
  const started = performance.now();
  const total = Math.floor(rate * seconds);
  let published = 0;
  while (published < total) {
    for (const due of duePublishes(published, started, performance.now(), durationMs, rate)) {
      const i = (published * 7) % clients.length;
      clients[i]!.emit('publish', { room: `room-${i % rooms}`, data: { t: due, p: payload } });
      published++;
    }
    await sleep(5);
  }
  const expected = total * (clients.length / rooms);
  await until('deliveries', () => load.delivered() >= expected, 30_000).catch(() => undefined);
  await sleep(500);
  return { total, expected };
}

/** The q-quantile of the latencies (sorts them in place). */
export function quantile(latencies: number[], q: number): number {
  latencies.sort((a, b) => a - b);
  return latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
}
