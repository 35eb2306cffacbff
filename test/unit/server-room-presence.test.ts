import { describe, expect, it } from 'vitest';
import {
  RoomPresence,
  type PresenceMessage,
} from '../../server-image/src/adapter/room-presence.js';

/**
 * An in-memory sharded pub/sub with Redis' semantics that matter here: PUBLISH returns the number
 * of subscribers at that instant, and each receiver gets messages in order, later.
 */
class Bus {
  private readonly subscribers = new Map<string, Set<Node>>();

  subscribe(room: string, node: Node): void {
    let set = this.subscribers.get(room);
    if (!set) this.subscribers.set(room, (set = new Set()));
    set.add(node);
  }

  unsubscribe(room: string, node: Node): void {
    this.subscribers.get(room)?.delete(node);
  }

  publish(room: string, message: PresenceMessage): Promise<number> {
    const receivers = [...(this.subscribers.get(room) ?? [])];
    for (const r of receivers) r.deliver(message);
    return Promise.resolve(receivers.length);
  }
}

class Node {
  readonly presence: RoomPresence;
  /** Set for a node that receives but never answers, like a server without this adapter. */
  silent = false;
  private chain = Promise.resolve();

  constructor(
    readonly uid: string,
    private readonly bus: Bus,
    timeoutMs = 1000,
  ) {
    this.presence = new RoomPresence(
      uid,
      '/',
      { publish: (room, m) => bus.publish(room, m), subscribed: () => Promise.resolve(true) },
      timeoutMs,
    );
  }

  deliver(message: PresenceMessage): void {
    this.chain = this.chain.then(async () => {
      await new Promise((r) => setImmediate(r));
      if (!this.silent) this.presence.onMessage(message);
    });
  }

  join(room: string): Promise<boolean> {
    this.bus.subscribe(room, this);
    this.presence.created(room);
    return this.presence.whenReady(room);
  }

  /** Like the adapter: forget the room at once, unsubscribe later (Redis processes it later). */
  leave(room: string): () => void {
    this.presence.deleted(room);
    return () => this.bus.unsubscribe(room, this);
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('room presence handshake', () => {
  it('lets a lone server skip, and stops it as soon as another server has acknowledged a member', async () => {
    const bus = new Bus();
    const a = new Node('a', bus);
    const b = new Node('b', bus);
    expect(await a.join('r')).toBe(true);
    expect(a.presence.canSkip('r')).toBe(true);
    expect(await b.join('r')).toBe(true);
    // b's join is acknowledged only after a recorded b: no window where a still skips.
    expect(a.presence.canSkip('r')).toBe(false);
    expect(b.presence.canSkip('r')).toBe(false);
    expect([...b.presence.remoteServers('r')!]).toEqual(['a']);
  });

  it('compresses only while every other member server said it inflates, in HELLO or in ACK', async () => {
    const bus = new Bus();
    const a = new Node('a', bus);
    const b = new Node('b', bus);
    expect(a.presence.canCompress('r')).toBe(false); // not a member: nothing known
    await a.join('r');
    await b.join('r');
    expect(a.presence.canCompress('r')).toBe(true); // learned from b's HELLO
    expect(b.presence.canCompress('r')).toBe(true); // learned from a's ACK
    // An older server: its HELLO carries no `inflates`.
    a.presence.onMessage({ type: 100, uid: 'old', data: { room: 'r', hid: 'x' } });
    expect(a.presence.canCompress('r')).toBe(false);
    a.presence.onMessage({ type: 102, uid: 'old', data: { room: 'r' } });
    expect(a.presence.canCompress('r')).toBe(true);
  });

  it('goes back to skipping after the other server says BYE, and a leaving server still answers HELLO', async () => {
    const bus = new Bus();
    const a = new Node('a', bus);
    const b = new Node('b', bus);
    await a.join('r');
    await b.join('r');
    const unsubscribeB = b.leave('r');
    await settle();
    expect(a.presence.canSkip('r')).toBe(true);
    // b forgot the room but is still subscribed: c's HELLO counts it, and b answers member: false.
    const c = new Node('c', bus);
    expect(await c.join('r')).toBe(true);
    expect([...c.presence.remoteServers('r')!]).toEqual(['a']);
    unsubscribeB();
  });

  it('never becomes ready while a subscriber does not answer, so it never skips', async () => {
    const bus = new Bus();
    const stock = new Node('stock', bus);
    stock.silent = true;
    await stock.join('r');
    const a = new Node('a', bus, 100);
    expect(await a.join('r')).toBe(false);
    expect(a.presence.canSkip('r')).toBe(false);
  });

  it('stops skipping while its shard is away and handshakes again when it is back', async () => {
    const bus = new Bus();
    const a = new Node('a', bus);
    await a.join('r');
    a.presence.suspend(['r']);
    expect(a.presence.canSkip('r')).toBe(false);
    a.presence.resume(['r']);
    expect(await a.presence.whenReady('r')).toBe(true);
    expect(a.presence.canSkip('r')).toBe(true);
  });

  it('keeps every member server known under concurrent joins and leaves', async () => {
    const bus = new Bus();
    const nodes = Array.from({ length: 6 }, (_, i) => new Node(`n${i}`, bus));
    for (let round = 0; round < 20; round++) {
      const joining = nodes.filter((_, i) => (i + round) % 3 !== 0);
      const results = await Promise.all(joining.map((n) => n.join('r')));
      expect(results.every(Boolean)).toBe(true);
      // Every member must know every other member: nobody may skip.
      for (const n of joining) {
        expect(new Set(n.presence.remoteServers('r'))).toEqual(
          new Set(joining.filter((m) => m !== n).map((m) => m.uid)),
        );
      }
      const unsubscribes = joining.map((n) => n.leave('r'));
      await settle();
      unsubscribes.forEach((u) => u());
    }
  });
});
