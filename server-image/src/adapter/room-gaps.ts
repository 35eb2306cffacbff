/**
 * Receiver-side count of room broadcasts that never arrived, which the publisher cannot see:
 * Redis counts a subscriber connection as reached when it takes the message, but a connection
 * that ioredis replaces while slots move (or that closes with the message unread) hands nothing
 * on. Each publishing server numbers its broadcasts per room; a receiver that sees a number
 * jump counts the numbers in between as missing, and counts them again as filled if they arrive
 * later (a repair's resend, or a late delivery). Missing minus filled is what this server's
 * members of the room lost, exactly, up to the last broadcast seen: a loss at the very end of a
 * room's traffic shows only with the room's next broadcast.
 */

/** A room silent this long on one sender is forgotten (the sender forgets its numbering later). */
const ROOM_IDLE_MS = 5 * 60_000;
/** Missing numbers remembered per sender and room, so a late arrival can be matched. */
const REMEMBERED_MISSING = 1024;
/** How often idle rooms are swept, at most. */
const SWEEP_EVERY_MS = 60_000;

interface RoomSeq {
  last: number;
  missing: Set<number>;
  seenAt: number;
}

export class RoomSequenceGaps {
  /** sender uid -> room -> state */
  private readonly bySender = new Map<string, Map<string, RoomSeq>>();
  private lastSweep = 0;

  /** Records `seq` of `room` from `sender`; returns how many numbers went missing or were filled. */
  seen(
    sender: string,
    room: string,
    seq: number,
    now = Date.now(),
  ): { missing: number; filled: number } {
    if (now - this.lastSweep > SWEEP_EVERY_MS) this.sweep(now);
    let rooms = this.bySender.get(sender);
    if (!rooms) {
      rooms = new Map();
      this.bySender.set(sender, rooms);
    }
    const state = rooms.get(room);
    if (!state) {
      // The first broadcast seen from this sender for this room is the baseline.
      rooms.set(room, { last: seq, missing: new Set(), seenAt: now });
      return { missing: 0, filled: 0 };
    }
    state.seenAt = now;
    if (seq > state.last) {
      const missing = seq - state.last - 1;
      for (let s = state.last + 1; s < seq && state.missing.size < REMEMBERED_MISSING; s++)
        state.missing.add(s);
      state.last = seq;
      return { missing, filled: 0 };
    }
    return { missing: 0, filled: state.missing.delete(seq) ? 1 : 0 };
  }

  /** This server left `room`: a later join starts a new baseline, not a gap. */
  forgetRoom(room: string): void {
    for (const rooms of this.bySender.values()) rooms.delete(room);
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [sender, rooms] of this.bySender) {
      for (const [room, state] of rooms) if (now - state.seenAt > ROOM_IDLE_MS) rooms.delete(room);
      if (rooms.size === 0) this.bySender.delete(sender);
    }
  }
}

/** A publisher's per-room numbering; forgets a room idle longer than receivers remember it. */
export class RoomSequencer {
  private readonly next = new Map<string, { seq: number; at: number }>();
  private lastSweep = 0;

  take(room: string, now = Date.now()): number {
    if (now - this.lastSweep > SWEEP_EVERY_MS) {
      this.lastSweep = now;
      for (const [r, e] of this.next) if (now - e.at > 2 * ROOM_IDLE_MS) this.next.delete(r);
    }
    const e = this.next.get(room) ?? { seq: 0, at: now };
    e.seq++;
    e.at = now;
    this.next.set(room, e);
    return e.seq;
  }
}
