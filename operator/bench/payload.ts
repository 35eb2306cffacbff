/**
 * The message every publisher sends: a chat-like JSON object of about `bytes` bytes when
 * serialised. `ts` is the time the publish was due (see schedule.ts) in epoch milliseconds with
 * sub-millisecond precision, read from the same clock in every process on the machine.
 */
export interface BenchPayload {
  ts: number;
  pub: number;
  seq: number;
  room: string;
  user: { id: string; name: string; avatar: string };
  kind: 'chat';
  text: string;
}

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function roomName(index: number): string {
  return `room-${index}`;
}

const WORDS =
  'the quick brown fox jumps over a lazy dog while socket fleets relay every message'.split(' ');

export function makePayload(
  bytes: number,
  pub: number,
  seq: number,
  room: string,
  ts: number,
): BenchPayload {
  const base: BenchPayload = {
    ts,
    pub,
    seq,
    room,
    user: {
      id: `user-${pub}-${seq % 1000}`,
      name: `Publisher ${pub}`,
      avatar: `https://cdn.example.com/a/${pub}.png`,
    },
    kind: 'chat',
    text: '',
  };
  const fixed = JSON.stringify(base).length;
  const words: string[] = [];
  let len = 0;
  for (let i = 0; fixed + len < bytes; i++) {
    const w = WORDS[i % WORDS.length]!;
    words.push(w);
    len += w.length + 1;
  }
  base.text = words.join(' ').slice(0, Math.max(0, bytes - fixed));
  return base;
}

/** Finds the send timestamp in what the server relays: the payload itself or `{ room, data }`. */
export function extractTimestamp(msg: unknown): number | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as { ts?: unknown; data?: unknown; payload?: unknown };
  if (typeof m.ts === 'number') return m.ts;
  if (m.data !== undefined) return extractTimestamp(m.data);
  if (m.payload !== undefined) return extractTimestamp(m.payload);
  return undefined;
}
