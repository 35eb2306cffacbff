import { deflateRawSync, inflateRawSync } from 'node:zlib';
import notepack from 'notepack.io';

/**
 * Deflate for a room broadcast (its packet and its options) on its way through Redis.
 *
 * With ip-hash routing every server has members in every room, so each broadcast crosses Redis
 * once in and once out per server: Redis bandwidth grows with servers × message size, and the
 * packet (the application's payload) is most of the message. Chat-like JSON shrinks to about
 * 60% under deflate; binary or already-compressed payloads do not, and are sent as they are.
 *
 * Each message is compressed on its own (no shared window across messages), because subscribers
 * join and leave channels at any time and must be able to read any single message. A small
 * window and a small output chunk keep each call cheap: about 10 µs to deflate and 5 µs to
 * inflate a 390-byte broadcast on these machines, measured alone (zlib's default 16 KiB chunk
 * made both about 20% slower and doubled the scavenges), against about 1 ms of socket writes for
 * the same broadcast to 100 recipients.
 */

/** Broadcasts smaller than this are not worth a zlib call: the saving is below the header's size. */
export const COMPRESS_MIN_BYTES = 200;
/** 2^10 bytes of window: plenty for one message, and cheap to set up for every call. */
const WINDOW_BITS = 10;
const MEM_LEVEL = 5;
/** Output is allocated in chunks of this size: one chunk holds a chat-sized message. */
const CHUNK_BYTES = 1024;

/**
 * The compressed msgpack of `value`, or undefined when compression does not save at least an
 * eighth (small, binary or already-compressed payloads).
 */
export function compressForBus(value: unknown): Buffer | undefined {
  const raw = notepack.encode(value);
  if (raw.length < COMPRESS_MIN_BYTES) return undefined;
  const packed = deflateRawSync(raw, {
    level: 1,
    windowBits: WINDOW_BITS,
    memLevel: MEM_LEVEL,
    chunkSize: CHUNK_BYTES,
  });
  return packed.length <= raw.length - (raw.length >> 3) ? packed : undefined;
}

/**
 * Bound on an inflated message, so that a corrupt message on the bus cannot make a server allocate
 * without limit: Redis's default pubsub output-buffer hard limit, past which Redis would have
 * disconnected the subscriber rather than deliver such a message uncompressed.
 */
export const MAX_INFLATED_BYTES = 32 * 1024 * 1024;

/** The value back from its compressed form; throws on corrupt or oversized input. */
export function inflateFromBus(packed: Uint8Array): unknown {
  const raw = inflateRawSync(packed, {
    windowBits: WINDOW_BITS,
    chunkSize: CHUNK_BYTES,
    maxOutputLength: MAX_INFLATED_BYTES,
  });
  return notepack.decode(raw);
}
