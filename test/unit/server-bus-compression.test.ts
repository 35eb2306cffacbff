import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  COMPRESS_MIN_BYTES,
  MAX_INFLATED_BYTES,
  compressForBus,
  inflateFromBus,
} from '../../server-image/src/adapter/bus-compression.js';

const chat = {
  packet: {
    type: 2,
    data: [
      'message',
      { room: 'r', text: 'the quick brown fox jumps over the lazy dog '.repeat(6) },
    ],
  },
  opts: { rooms: ['r'], except: [], flags: {} },
};

describe('bus compression', () => {
  it('deflates a chat-sized broadcast and inflates it back to the same value', () => {
    const packed = compressForBus(chat);
    expect(packed).toBeInstanceOf(Buffer);
    expect(inflateFromBus(packed!)).toEqual(chat);
  });

  it('leaves small and incompressible broadcasts alone', () => {
    expect(
      compressForBus({ type: 2, data: ['message', 'x'.repeat(COMPRESS_MIN_BYTES - 40)] }),
    ).toBeUndefined();
    expect(compressForBus({ type: 2, data: ['message', randomBytes(600)] })).toBeUndefined();
  });

  it('refuses corrupt input and output past the bound instead of allocating it', () => {
    expect(() => inflateFromBus(Buffer.from('not deflate at all'))).toThrow();
    const bomb = deflateRawSync(Buffer.alloc(MAX_INFLATED_BYTES + 1024), { windowBits: 10 });
    expect(bomb.length).toBeLessThan(256 * 1024);
    expect(() => inflateFromBus(bomb)).toThrow(
      /Cannot create a Buffer larger|maxOutputLength|larger than/i,
    );
  });
});
