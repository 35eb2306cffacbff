import { describe, expect, it } from 'vitest';
import { RoomSequenceGaps, RoomSequencer } from '../../server-image/src/adapter/room-gaps.js';

describe('per-room broadcast numbering', () => {
  it('numbers each room on its own, starting at 1', () => {
    const seq = new RoomSequencer();
    expect([seq.take('a'), seq.take('a'), seq.take('b'), seq.take('a')]).toEqual([1, 2, 1, 3]);
  });

  it('counts numbers that never came, and again those that came late', () => {
    const gaps = new RoomSequenceGaps();
    // The first one seen is the baseline, whatever its number (this server joined late).
    expect(gaps.seen('s1', 'room', 7)).toEqual({ missing: 0, filled: 0 });
    expect(gaps.seen('s1', 'room', 8)).toEqual({ missing: 0, filled: 0 });
    expect(gaps.seen('s1', 'room', 12)).toEqual({ missing: 3, filled: 0 });
    // A resend of 10 arrives after 12: filled; a repeat of it is neither.
    expect(gaps.seen('s1', 'room', 10)).toEqual({ missing: 0, filled: 1 });
    expect(gaps.seen('s1', 'room', 10)).toEqual({ missing: 0, filled: 0 });
    // Senders and rooms are counted apart.
    expect(gaps.seen('s2', 'room', 3)).toEqual({ missing: 0, filled: 0 });
    expect(gaps.seen('s1', 'other', 40)).toEqual({ missing: 0, filled: 0 });
  });

  it('starts a new baseline after this server left the room or the room went idle', () => {
    const gaps = new RoomSequenceGaps();
    gaps.seen('s1', 'room', 1, 0);
    gaps.forgetRoom('room');
    expect(gaps.seen('s1', 'room', 50, 1)).toEqual({ missing: 0, filled: 0 });
    // Ten minutes of silence: the sender may have restarted its numbering.
    expect(gaps.seen('s1', 'room', 3, 10 * 60_000)).toEqual({ missing: 0, filled: 0 });
    expect(gaps.seen('s1', 'room', 4, 10 * 60_000 + 1)).toEqual({ missing: 0, filled: 0 });
  });
});
