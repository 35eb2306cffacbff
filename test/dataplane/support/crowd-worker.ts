import http from 'node:http';
import { io, type Socket } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';
import { sourceAddress } from '../../../operator/bench/addresses.js';
import {
  roomOfClient,
  type ClientRecord,
  type CrowdWorkerConfig,
  type FromCrowdWorker,
  type ToCrowdWorker,
} from './crowd-protocol.js';

/**
 * One forked process of a test crowd: opens its slice of socket.io-clients through the gateway,
 * each from its own loopback address, lets them reconnect on their own, and records per client
 * every connect, disconnect (with socket.io-client's reason), connect error and received
 * message sequence number. The coordinator (crowd.ts) turns these into exact counts. Only ever
 * run through fork(): it answers on the process channel.
 */

const records: ClientRecord[] = [];
const sockets: Socket[] = [];

function send(msg: FromCrowdWorker): void {
  process.send?.(msg);
}

function open(config: CrowdWorkerConfig, index: number): void {
  const every = config.pollingEvery;
  const polling = every > 0 && index % every === 0;
  const upgrading = every > 1 && index % every === Math.floor(every / 2);
  const transports: ('polling' | 'websocket')[] = polling
    ? ['polling']
    : upgrading
      ? ['polling', 'websocket']
      : ['websocket'];
  const localAddress = sourceAddress(config.addressBase + index);
  const rec: ClientRecord = {
    index,
    room: roomOfClient(index, config.rooms),
    polling,
    transports: transports.join('+'),
    connects: [],
    unsubscribed: 0,
    joins: [],
    disconnects: [],
    connectErrors: [],
    received: [],
    connected: false,
  };
  records.push(rec);
  const socket = io(config.url, {
    transports,
    parser: msgpackParser,
    forceNew: true,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 2000,
    timeout: 20_000,
    // engine.io-client hands these to the http and ws layers in Node.
    agent: new http.Agent({ localAddress, keepAlive: true }) as unknown as string,
    localAddress,
  } as Parameters<typeof io>[1]);
  sockets.push(socket);
  socket.on('connect', () => {
    rec.connects.push(Date.now());
    rec.connected = true;
    socket
      .timeout(15_000)
      .emit('join', rec.room, (err: unknown, ack: { ok?: boolean; subscribed?: boolean }) => {
        if (err || ack.ok !== true) return;
        rec.joins.push(Date.now());
        if (ack.subscribed !== true) rec.unsubscribed++;
      });
  });
  socket.on('disconnect', (reason) => {
    rec.connected = false;
    rec.disconnects.push({ at: Date.now(), reason });
  });
  socket.on('connect_error', (err) => {
    rec.connectErrors.push({ at: Date.now(), message: err.message });
  });
  socket.on('message', (m: { room: string; data: { seq: number } }) => {
    rec.received.push(m.data.seq);
  });
}

process.on('message', (msg: ToCrowdWorker) => {
  if (msg.type === 'start') {
    const c = msg.config;
    let next = 0;
    // A steady ramp: a burst of thousands of handshakes at once is not what is being measured.
    const opener = setInterval(() => {
      for (let k = 0; k < 20 && next < c.count; k++, next++) open(c, c.first + next);
      if (next >= c.count) clearInterval(opener);
    }, 25);
    setInterval(() => {
      send({
        type: 'progress',
        connected: records.filter((r) => r.connected).length,
        joined: records.filter((r) => r.connected && r.joins.length > 0).length,
      });
    }, 250).unref();
  } else {
    send({ type: 'report', clients: records });
  }
});

process.on('disconnect', () => {
  for (const s of sockets) s.close();
  process.exit(0);
});
