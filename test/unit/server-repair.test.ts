import { describe, expect, it } from 'vitest';
import { DeliveredIds, publishWithRepair } from '../../server-image/src/adapter/repair.js';

describe('publisher-side repair of short room broadcasts', () => {
  it('resends while a topology change leaves member servers unsubscribed, then stops', async () => {
    const answers = [1, 2, 3];
    let sent = 0;
    let repaired = 0;
    await publishWithRepair({
      send: () => Promise.resolve(answers[sent++]!),
      expected: () => 3,
      topologyChanging: () => true,
      holdMs: 5000,
      retryDelayMs: 1,
      onRepaired: () => repaired++,
      onShort: () => expect.unreachable('no shortfall once every server is reached'),
    });
    expect(sent).toBe(3);
    expect(repaired).toBe(1);
  });

  it('only counts a shortfall when nothing is changing, and gives up after the hold', async () => {
    const missing: number[] = [];
    let sent = 0;
    const send = (): Promise<number> => (sent++, Promise.resolve(1));
    await publishWithRepair({
      send,
      expected: () => 3,
      topologyChanging: () => false,
      holdMs: 5000,
      retryDelayMs: 1,
      onShort: (n) => missing.push(n),
    });
    expect([sent, missing]).toEqual([1, [2]]);
    await publishWithRepair({
      send,
      expected: () => 2,
      topologyChanging: () => true,
      holdMs: 20,
      retryDelayMs: 5,
      onShort: (n) => missing.push(n),
    });
    expect(sent).toBeGreaterThan(2);
    expect(missing).toEqual([2, 1]);
  });

  it('does nothing more for a room this server does not track', async () => {
    let sent = 0;
    await publishWithRepair({
      send: () => (sent++, Promise.resolve(0)),
      expected: () => undefined,
      topologyChanging: () => true,
      holdMs: 5000,
      retryDelayMs: 1,
    });
    expect(sent).toBe(1);
  });
});

describe('delivered ids', () => {
  it('drops a resend per sender, and forgets senders that went quiet', () => {
    const d = new DeliveredIds();
    expect(d.firstTime('a', 1, 0)).toBe(true);
    expect(d.firstTime('a', 1, 0)).toBe(false);
    expect(d.firstTime('b', 1, 0)).toBe(true);
    expect(d.senders).toBe(2);
    expect(d.firstTime('b', 2, 120_000)).toBe(true);
    expect(d.senders).toBe(1);
  });
});
