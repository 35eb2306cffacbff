import http from 'node:http';
import { io, type Socket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';

export type Client = Socket;

export interface ClientOptions {
  /** Source address, e.g. 127.12.3.1: nginx ip_hash keys on its first three octets. */
  localAddress?: string;
  transports?: ('polling' | 'websocket')[];
  parser?: 'msgpack' | 'json';
  forceBase64?: boolean;
  reconnection?: boolean;
}

const open: Client[] = [];
const firstTransport = new WeakMap<Client, string>();

/** The transport the session was opened on (polling when it later upgraded). */
export function initialTransport(client: Client): string | undefined {
  return firstTransport.get(client);
}

/** A real socket.io-client with the server's parser; resolves once connected. */
export async function connect(url: string, options: ClientOptions = {}): Promise<Client> {
  const opts: Record<string, unknown> = {
    transports: options.transports ?? ['websocket'],
    forceNew: true,
    reconnection: options.reconnection ?? false,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    timeout: 10_000,
  };
  if ((options.parser ?? 'msgpack') === 'msgpack') opts.parser = msgpackParser;
  if (options.forceBase64) opts.forceBase64 = true;
  if (options.localAddress) {
    opts.agent = new http.Agent({ localAddress: options.localAddress, keepAlive: true });
    opts.localAddress = options.localAddress;
  }
  // `agent` is typed as string | boolean, but in Node engine.io-client hands it to the http/ws layer.
  const socket = io(url, opts as Partial<ManagerOptions & SocketOptions>);
  open.push(socket);
  socket.io.once('open', () => firstTransport.set(socket, socket.io.engine.transport.name));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  return socket;
}

/** Collects every `message` event a client receives. */
export function collect(client: Client, event = 'message'): unknown[] {
  const received: unknown[] = [];
  client.on(event, (payload: unknown) => received.push(payload));
  return received;
}

export function closeAllClients(): void {
  for (const s of open.splice(0)) s.close();
}
