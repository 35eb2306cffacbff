import * as ws from 'ws';

type FrameOptions = {
  readOnly: boolean;
  mask: boolean;
  rsv1: boolean;
  opcode: number;
  fin: boolean;
};
type FrameFn = (data: Buffer, options: FrameOptions) => Buffer[];

// ws exports Sender at run time, but @types/ws does not declare it.
const frame: FrameFn | undefined = (ws as unknown as { Sender?: { frame?: FrameFn } }).Sender
  ?.frame;

/** Whether this ws version can build frames ahead of time (socket.io-adapter makes the same check). */
export const canPreEncodeFrames = typeof frame === 'function';

/**
 * One unmasked, final WebSocket frame holding `data`: built once per broadcast and written as-is
 * to every local recipient (engine.io's websocket transport sends `wsPreEncodedFrame` verbatim).
 */
export function preEncodeFrame(data: Buffer | string): Buffer[] {
  const binary = typeof data !== 'string';
  const parts = frame!(binary ? data : Buffer.from(data), {
    readOnly: false,
    mask: false,
    rsv1: false,
    opcode: binary ? 2 : 1,
    fin: true,
  });
  // One buffer, copied once per broadcast: ws then does a single write per recipient instead of
  // cork + two writes + uncork.
  return parts.length === 1 ? parts : [Buffer.concat(parts)];
}
