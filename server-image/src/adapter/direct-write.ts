/**
 * The last step of a broadcast to one recipient, without engine.io's per-packet machinery.
 *
 * Per recipient, engine.io builds a packet object, emits packetCreate and flush, queues and
 * flushes a one-element write buffer, hands the frame to ws with a callback, and on the next tick
 * emits drain and ready. With a frame built once per broadcast, all of that is bookkeeping around
 * one socket write: engine.io's own code was about 6% of the servers' busy CPU under
 * `npm run bench -- --cpu-prof`, and 2% with this path.
 *
 * This writes the pre-built frame through ws's own `sendFrame` (the call engine.io's websocket
 * transport makes for `wsPreEncodedFrame`) when doing so cannot reorder or lose anything, and
 * reports false otherwise so that the caller takes the library path:
 * - the engine socket is open and its write buffer is empty: nothing queued can be overtaken
 *   (everything handed to ws before is already in the TCP stream, in order);
 * - the transport is websocket and writable, and ws negotiated no extension: permessage-deflate
 *   would let a frame being compressed be overtaken;
 * - ws's sender has nothing queued either (it queues only while deflating or reading a Blob);
 * - nothing waits in the socket's own buffer (ws's bufferedAmount is 0). A client that reads
 *   slower than we write fills it; engine.io's path then takes over, with its flow control:
 *   its transport stays unwritable until the kernel took the last write, and it queues packets
 *   meanwhile or, for volatile ones, drops them. Direct writes never clear that flag, so without
 *   this check a slow client's buffer would grow without bound and volatile would mean nothing.
 */

/** The engine.io and ws members this reads; they are public in JS, partly undeclared in typings. */
export interface EngineConnection {
  readyState: string;
  writeBuffer: unknown[];
  transport: {
    name: string;
    writable: boolean;
    socket?: {
      readyState: number;
      /** The negotiated extensions, '' when none. */
      extensions?: string;
      /** Bytes handed to the socket and not yet taken by the kernel. */
      bufferedAmount?: number;
      _sender?: { _queue?: unknown[]; sendFrame?(list: Buffer[]): void };
    };
  };
}

/** ws's WebSocket.OPEN. */
const WS_OPEN = 1;

export function writeFrameDirect(conn: EngineConnection, frame: Buffer[]): boolean {
  if (conn.readyState !== 'open' || conn.writeBuffer.length !== 0) return false;
  const transport = conn.transport;
  if (transport.name !== 'websocket' || !transport.writable) return false;
  const ws = transport.socket;
  const sender = ws?._sender;
  if (
    ws?.readyState !== WS_OPEN ||
    ws.extensions !== '' ||
    ws.bufferedAmount !== 0 ||
    typeof sender?.sendFrame !== 'function' ||
    sender._queue === undefined ||
    sender._queue.length !== 0
  ) {
    return false;
  }
  // A failed write surfaces as the socket's 'error', which ws turns into a close that engine.io
  // sees; engine.io's own callback would only do the same.
  sender.sendFrame(frame);
  return true;
}
