// Socket.IO traffic through the gateway Service of a cluster on the real node: one
// loopback forwarder per client, each from its own source address inside the node's
// namespace, so the gateway's client-address hash spreads the clients over the servers.
import type { Client } from '../../dataplane/support/clients.js';
import { connect } from '../../dataplane/support/clients.js';
import { CLIENT_SOURCE_IPS, type RealNode } from '../harness.js';

export interface Message {
  room: string;
  /** `t`: when the publisher sent it (ms since epoch). */
  data: { tag: string; from: number; seq: number; t: number };
}

export interface Member {
  index: number;
  room: string;
  client: Client;
  received: Message[];
  /** When each of `received` arrived (ms since epoch), index for index. */
  receivedAt: number[];
  /** Times (ms since epoch) of every disconnect and every (re)connect after the first. */
  disconnects: number[];
  reconnects: number[];
  /** What the client saw fail: connect errors (an HTTP error of the gateway is one). */
  errors: string[];
}

export interface Ack {
  ok: boolean;
  error?: string;
}

/** Opens `count` clients through the gateway; client i joins room `rooms[i % rooms.length]`. */
export async function openMembers(
  node: RealNode,
  gatewayIp: string,
  gatewayPort: number,
  count: number,
  rooms: string[],
): Promise<Member[]> {
  if (count > CLIENT_SOURCE_IPS.length)
    throw new Error(`at most ${CLIENT_SOURCE_IPS.length} clients`);
  // One at a time, each retried: a burst of new forwarders (each connection starts socat and
  // nsenter) on a loaded machine can fail a first polling request.
  const members: Member[] = [];
  for (let index = 0; index < count; index++) {
    const port = await node.forward(
      `gw-${index}`,
      gatewayIp,
      gatewayPort,
      CLIENT_SOURCE_IPS[index],
    );
    let client: Client | undefined;
    for (let attempt = 1; !client; attempt++) {
      try {
        client = await connect(`http://127.0.0.1:${port}`, {
          // WebSocket only: engine.io-client's XHR polling fails at once under vitest here
          // ("xhr poll error"); user-path.test.ts checks a polling handshake separately.
          transports: ['websocket'],
          parser: 'msgpack',
          // A failed first attempt must not linger and reconnect later as a second client.
          reconnection: false,
        });
        client.io.reconnection(true);
      } catch (err) {
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const member: Member = {
      index,
      room: rooms[index % rooms.length]!,
      client,
      received: [],
      receivedAt: [],
      disconnects: [],
      reconnects: [],
      errors: [],
    };
    client.on('message', (m: Message) => {
      member.received.push(m);
      member.receivedAt.push(Date.now());
    });
    client.on('disconnect', () => member.disconnects.push(Date.now()));
    client.on('connect_error', (err: Error) => member.errors.push(err.message));
    // A new session has no rooms: join again before counting the client as back.
    client.io.on('reconnect', () => {
      void join(member).then(() => member.reconnects.push(Date.now()));
    });
    await join(member);
    members.push(member);
  }
  return members;
}

async function join(member: Member): Promise<void> {
  const ack = (await member.client.timeout(10_000).emitWithAck('join', member.room)) as Ack;
  if (!ack.ok)
    throw new Error(`client ${member.index} could not join ${member.room}: ${ack.error}`);
}

export async function publish(member: Member, tag: string, seq: number): Promise<Ack> {
  const data = { tag, from: member.index, seq, t: Date.now() };
  try {
    return (await member.client
      .timeout(5_000)
      .emitWithAck('publish', { room: member.room, data })) as Ack;
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export function receivedWithTag(member: Member, tag: string): Message[] {
  return member.received.filter((m) => m.data.tag === tag);
}

export interface LoadResult {
  published: number;
  acked: number;
  ackErrors: Map<string, number>;
  /** Messages acked ok, per room. */
  ackedByRoom: Map<string, Set<string>>;
  /** When each acked message was sent, by `from:seq`. */
  sentAt: Map<string, number>;
  /** Publishes that failed or timed out, by the publishing member's index. */
  failedBy: Map<number, number>;
}

/**
 * Every client publishes one message every `intervalMs` until `stop()` resolves;
 * returns what was published and acknowledged.
 */
export function startLoad(
  members: Member[],
  tag: string,
  intervalMs: number,
): {
  stop: () => Promise<LoadResult>;
} {
  const result: LoadResult = {
    published: 0,
    acked: 0,
    ackErrors: new Map(),
    ackedByRoom: new Map(),
    sentAt: new Map(),
    failedBy: new Map(),
  };
  let running = true;
  const loops = members.map(async (m) => {
    for (let seq = 0; running; seq++) {
      if (m.client.connected) {
        result.published++;
        const sent = Date.now();
        const ack = await publish(m, tag, seq);
        if (ack.ok) {
          result.acked++;
          const set = result.ackedByRoom.get(m.room) ?? new Set<string>();
          set.add(`${m.index}:${seq}`);
          result.sentAt.set(`${m.index}:${seq}`, sent);
          result.ackedByRoom.set(m.room, set);
        } else {
          const key = ack.error ?? 'unknown';
          result.ackErrors.set(key, (result.ackErrors.get(key) ?? 0) + 1);
          result.failedBy.set(m.index, (result.failedBy.get(m.index) ?? 0) + 1);
        }
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  });
  return {
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      // Let the last broadcasts arrive.
      await new Promise((r) => setTimeout(r, 2_000));
      return result;
    },
  };
}

/**
 * Messages lost by the clients that stayed connected the whole time: each should have
 * received every acknowledged message of its room.
 */
export function lossOfSteadyMembers(
  members: Member[],
  tag: string,
  since: number,
  load: LoadResult,
  rooms?: ReadonlySet<string>,
): { steady: number; expected: number; received: number; lostSentAt: number[]; lost: string[] } {
  let expected = 0;
  let received = 0;
  let steady = 0;
  const lostSentAt: number[] = [];
  /** `from:seq` of each message a steady member missed (once per member that missed it). */
  const lost: string[] = [];
  for (const m of members) {
    if (m.disconnects.some((t) => t >= since)) continue;
    if (rooms && !rooms.has(m.room)) continue;
    steady++;
    const acked = load.ackedByRoom.get(m.room) ?? new Set<string>();
    expected += acked.size;
    const got = new Set(receivedWithTag(m, tag).map((x) => `${x.data.from}:${x.data.seq}`));
    for (const k of acked) {
      if (got.has(k)) received++;
      else {
        lostSentAt.push(load.sentAt.get(k) ?? 0);
        lost.push(k);
      }
    }
  }
  return { steady, expected, received, lostSentAt, lost };
}

/** Members that disconnected at or after `since`. */
export function movedSince(members: Member[], since: number): Member[] {
  return members.filter((m) => m.disconnects.some((t) => t >= since));
}

/**
 * For each member that disconnected at or after `since`: when it was connected again, back in
 * its room, and had received a broadcast there (ms since epoch); undefined while it is not.
 */
export function backAt(m: Member, since: number): number | undefined {
  const rejoined = m.reconnects.find((t) => t >= since);
  if (rejoined === undefined || !m.client.connected) return undefined;
  return m.receivedAt.find((t) => t >= rejoined);
}
