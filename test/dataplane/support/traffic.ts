import { connect, type Client } from './clients.js';
import { sleep, type ServerProcess } from './fleet.js';

interface Arrival {
  seq: number;
  at: number;
}

interface Receiver {
  server: number;
  arrivals: Arrival[];
}

interface RoomState {
  room: string;
  publisherServer: number;
  publisher: Client;
  receivers: Receiver[];
  sent: number;
  sentAt: number[];
}

export interface RoomReport {
  room: string;
  sent: number;
  /** Messages at least one member on another server than the publisher's never got. */
  lostMessages: number;
  /** Missing (member, message) pairs. */
  lostDeliveries: number;
  /** Deliveries of a message a member already had. */
  duplicates: number;
  /** Arrivals with a lower sequence number than one the member already had. */
  reordered: number;
  /** Longest silence between two arrivals at one member on another server (ms). */
  maxGapMs: number;
  /** Longest time from publish to arrival at any member (ms). */
  maxLatencyMs: number;
  /** `server:seq` of the first missing deliveries, to tell where a loss happened. */
  missing: string[];
}

export interface TrafficReport {
  rooms: RoomReport[];
  sent: number;
  lostMessages: number;
  lostDeliveries: number;
  duplicates: number;
  reordered: number;
  maxGapMs: number;
  maxLatencyMs: number;
  missing: string[];
}

/** Sums per-room reports into one. */
export function summarize(rooms: RoomReport[]): TrafficReport {
  const sum = (k: keyof RoomReport): number => rooms.reduce((a, r) => a + Number(r[k]), 0);
  const max = (k: keyof RoomReport): number => Math.max(0, ...rooms.map((r) => Number(r[k])));
  return {
    rooms,
    sent: sum('sent'),
    lostMessages: sum('lostMessages'),
    lostDeliveries: sum('lostDeliveries'),
    duplicates: sum('duplicates'),
    reordered: sum('reordered'),
    maxGapMs: max('maxGapMs'),
    maxLatencyMs: max('maxLatencyMs'),
    missing: rooms.flatMap((r) => r.missing.map((m) => `${r.room}@${m}`)).slice(0, 20),
  };
}

/**
 * Steady traffic through real socket.io-clients: every room has one member on each server and
 * one publisher (on server `i % n` for room i) that publishes `{ seq, t }` through the relay at a
 * fixed rate. Every arrival is recorded, so loss, duplicates, order and gaps are counted per
 * room and per member exactly, not sampled.
 */
export class RoomTraffic {
  private timer: NodeJS.Timeout | undefined;
  private readonly clients: Client[] = [];

  private constructor(private readonly states: RoomState[]) {}

  static async start(
    servers: ServerProcess[],
    rooms: string[],
    opts: { perRoomPerSecond: number },
  ): Promise<RoomTraffic> {
    const states: RoomState[] = [];
    const traffic = new RoomTraffic(states);
    for (const [i, room] of rooms.entries()) {
      const receivers: Receiver[] = [];
      for (const [s, server] of servers.entries()) {
        const client = await connect(server.url);
        traffic.clients.push(client);
        const receiver: Receiver = { server: s, arrivals: [] };
        client.on('message', (m: { room: string; data: { seq: number } }) => {
          if (m.room === room) receiver.arrivals.push({ seq: m.data.seq, at: Date.now() });
        });
        const ack = (await client.emitWithAck('join', room)) as { subscribed?: boolean };
        if (ack.subscribed !== true) throw new Error(`join of ${room} was not subscribed`);
        receivers.push(receiver);
      }
      const publisherServer = i % servers.length;
      const publisher = await connect(servers[publisherServer]!.url);
      traffic.clients.push(publisher);
      states.push({ room, publisherServer, publisher, receivers, sent: 0, sentAt: [] });
    }
    const tickMs = Math.round(1000 / opts.perRoomPerSecond);
    traffic.timer = setInterval(() => {
      for (const st of states) {
        const seq = st.sent++;
        st.sentAt.push(Date.now());
        st.publisher.emit('publish', { room: st.room, data: { seq, t: Date.now() } });
      }
    }, tickMs);
    return traffic;
  }

  /** Stops publishing and waits until nothing has arrived for `quietMs` (held publishes included). */
  async stop(quietMs = 1500, maxWaitMs = 20_000): Promise<void> {
    clearInterval(this.timer);
    const deadline = Date.now() + maxWaitMs;
    let last = -1;
    for (;;) {
      const total = this.states.reduce(
        (a, s) => a + s.receivers.reduce((b, r) => b + r.arrivals.length, 0),
        0,
      );
      if (total === last || Date.now() > deadline) break;
      last = total;
      await sleep(quietMs);
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  report(filter: (room: string) => boolean = () => true): TrafficReport {
    return summarize(this.states.filter((s) => filter(s.room)).map((s) => this.roomReport(s)));
  }

  private roomReport(st: RoomState): RoomReport {
    const missedBySeq = new Set<number>();
    let lostDeliveries = 0;
    let duplicates = 0;
    let reordered = 0;
    let maxGapMs = 0;
    let maxLatencyMs = 0;
    const missing: string[] = [];
    for (const r of st.receivers) {
      const seen = new Set<number>();
      let highest = -1;
      for (const [i, a] of r.arrivals.entries()) {
        if (seen.has(a.seq)) duplicates++;
        seen.add(a.seq);
        if (a.seq < highest) reordered++;
        highest = Math.max(highest, a.seq);
        maxLatencyMs = Math.max(maxLatencyMs, a.at - st.sentAt[a.seq]!);
        if (i > 0 && r.server !== st.publisherServer)
          maxGapMs = Math.max(maxGapMs, a.at - r.arrivals[i - 1]!.at);
      }
      for (let seq = 0; seq < st.sent; seq++) {
        if (seen.has(seq)) continue;
        lostDeliveries++;
        missedBySeq.add(seq);
        if (missing.length < 10) missing.push(`${r.server}:${seq}`);
      }
    }
    return {
      room: st.room,
      sent: st.sent,
      lostMessages: missedBySeq.size,
      lostDeliveries,
      duplicates,
      reordered,
      maxGapMs,
      maxLatencyMs,
      missing,
    };
  }
}

/** Polls every server's /readyz until stopped; returns the non-200 answers it saw. */
export function watchReadiness(servers: ServerProcess[]): { stop(): Promise<string[]> } {
  const bad: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const s of servers) {
        const code = await s.readyz().catch(() => 0);
        if (code !== 200) bad.push(`${s.name}: ${code} at ${new Date().toISOString()}`);
      }
      await sleep(200);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return bad;
    },
  };
}

/** Sum of a metric over every server. */
export async function fleetMetric(
  servers: ServerProcess[],
  name: string,
  labels?: Record<string, string>,
): Promise<number> {
  const values = await Promise.all(servers.map((s) => s.metric(name, labels)));
  return values.reduce((a, b) => a + b, 0);
}

/** The bus counters a loss is checked against, summed over every server. */
export const BUS_COUNTERS = [
  'socketfleet_bus_publish_failed_total',
  'socketfleet_bus_publish_short_total',
  'socketfleet_bus_publish_repaired_total',
  'socketfleet_bus_duplicates_dropped_total',
  'socketfleet_bus_sequence_gaps_total',
  'socketfleet_bus_sequence_gaps_filled_total',
] as const;

export interface BusCounters {
  failed: number;
  short: number;
  repaired: number;
  duplicatesDropped: number;
  /** Broadcasts receivers found missing by number, minus those that came late: their loss. */
  gapsLost: number;
}

export async function busCounters(servers: ServerProcess[]): Promise<BusCounters> {
  const [failed, short, repaired, duplicatesDropped, gaps, filled] = await Promise.all(
    BUS_COUNTERS.map((name) => fleetMetric(servers, name)),
  );
  return {
    failed: failed!,
    short: short!,
    repaired: repaired!,
    duplicatesDropped: duplicatesDropped!,
    gapsLost: gaps! - filled!,
  };
}

export function counterDelta(after: BusCounters, before: BusCounters): BusCounters {
  return {
    failed: after.failed - before.failed,
    short: after.short - before.short,
    repaired: after.repaired - before.repaired,
    duplicatesDropped: after.duplicatesDropped - before.duplicatesDropped,
    gapsLost: after.gapsLost - before.gapsLost,
  };
}
