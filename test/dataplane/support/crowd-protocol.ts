/** What the test process and its forked crowd workers (crowd-worker.ts) tell each other. */

export interface CrowdWorkerConfig {
  url: string;
  first: number;
  count: number;
  rooms: number;
  /**
   * Clients whose index % pollingEvery === 0 never upgrade (0: none); those at pollingEvery / 2
   * start on long-polling and upgrade, as browsers do; the rest open a WebSocket at once.
   */
  pollingEvery: number;
  /** Offset into the source address space, so two crowds never share addresses. */
  addressBase: number;
}

export interface ClientRecord {
  index: number;
  room: string;
  polling: boolean;
  transports: string;
  connects: number[];
  /** Joins acknowledged without `subscribed` (a bounded wait ran out): delivery not promised. */
  unsubscribed: number;
  /** When each join was acknowledged as subscribed (publishes after it must arrive). */
  joins: number[];
  disconnects: { at: number; reason: string }[];
  connectErrors: { at: number; message: string }[];
  /** Sequence numbers of received messages, per the one room this client is in. */
  received: number[];
  connected: boolean;
}

export type ToCrowdWorker = { type: 'start'; config: CrowdWorkerConfig } | { type: 'report' };
export type FromCrowdWorker =
  | { type: 'progress'; connected: number; joined: number }
  | { type: 'report'; clients: ClientRecord[] };

export function roomOfClient(index: number, rooms: number): string {
  return `room-${index % rooms}`;
}
