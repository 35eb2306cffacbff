import type { BenchParser, BenchProtocol, BenchTransport } from './options.js';

/** What the coordinator tells one forked client worker: its slice of clients and publishers. */
export interface WorkerConfig {
  workerId: number;
  url: string;
  path: string;
  protocol: BenchProtocol;
  parser: BenchParser;
  transports: BenchTransport[];
  roomQuery: boolean;
  roomKey: string;
  event: string;
  spreadSources: boolean;
  rampConcurrency: number;
  /** New connections per second this worker opens at most; 0: unpaced. */
  rampPerSecond: number;
  payloadBytes: number;
  rooms: number;
  /** Global indices [firstClient, firstClient + clientCount) of the room members in this worker. */
  firstClient: number;
  clientCount: number;
  /** Global indices of the publishers in this worker, out of totalPublishers. */
  publishers: number[];
  totalPublishers: number;
  /** Publishes per second of each publisher. */
  publisherRate: number;
  /** Source address index offset for publishers, past every member. */
  publisherAddressBase: number;
}

export type ToWorker =
  | { type: 'init'; config: WorkerConfig }
  | { type: 'run'; startAt: number; durationMs: number }
  | { type: 'stop' };

export interface Tick {
  type: 'tick';
  workerId: number;
  /** Seconds since the publish phase started (negative before it). */
  t: number;
  delivered: number;
  bytesRead: number;
  sent: number;
  errors: number;
  disconnects: number;
  /** Latency histogram of this interval (microseconds, from each publish's due time), compressed base64. */
  hist: string;
  /** How late the generator sent this interval's publishes after their due time (microseconds). */
  lateness: string;
}

export type FromWorker =
  | { type: 'progress'; workerId: number; connected: number; failed: number }
  | {
      type: 'ready';
      workerId: number;
      connected: number;
      failed: number;
      joinFailed: number;
      /** Members per room index, counted from successful joins. */
      members: number[];
      errorSamples: string[];
    }
  | Tick
  | {
      type: 'published';
      workerId: number;
      /** Publishes per room index that were not refused. */
      sentPerRoom: number[];
      refused: number;
      errorSamples: string[];
    }
  | { type: 'done'; workerId: number };
