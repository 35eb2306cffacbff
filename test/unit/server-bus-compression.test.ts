import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  COMPRESS_MIN_BYTES,
  MAX_INFLATED_BYTES,
  compressPacket,
  inflatePacket,
} from '../../server-image/src/adapter/bus-compression.js';

const chat = {
  type: 2,
  data: ['message', { room: 'r', text: 'the quick brown fox jumps over the lazy dog '.repeat(6) }],
};

describe('bus compression', () => {
  it('deflates a chat-sized packet and inflates it back to the same value', () => {
    const packed = compressPacket(chat);
    expect(packed).toBeInstanceOf(Buffer);
    expect(inflatePacket(packed!)).toEqual(chat);
  });

  it('leaves small and incompressible packets alone', () => {
    expect(
      compressPacket({ type: 2, data: ['message', 'x'.repeat(COMPRESS_MIN_BYTES - 40)] }),
    ).toBeUndefined();
    expect(compressPacket({ type: 2, data: ['message', randomBytes(600)] })).toBeUndefined();
  });

  it('refuses corrupt input and output past the bound instead of allocating it', () => {
    expect(() => inflatePacket(Buffer.from('not deflate at all'))).toThrow();
    const bomb = deflateRawSync(Buffer.alloc(MAX_INFLATED_BYTES + 1024), { windowBits: 10 });
    expect(bomb.length).toBeLessThan(256 * 1024);
    expect(() => inflatePacket(bomb)).toThrow(
      /Cannot create a Buffer larger|maxOutputLength|larger than/i,
    );
  });
});
