import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import {
  channelOf,
  compareIds,
  formatOffset,
  journalKeyOf,
  keyInSlotOf,
  logKeyOf,
  parseOffset,
  sessionKeyOf,
} from '../../server-image/src/adapter/recovery-keys.js';

describe('recovery keys', () => {
  it("puts a room's log in the slot of the room's channel, whatever braces the name holds", () => {
    const rooms = ['lobby', 'a{b}c', '{tag}x', 'x}y{z', 'only{', 'only}', '{}', 'a{}b}c', 'é€'];
    for (const room of rooms) {
      const channel = channelOf('/', room);
      expect(calculateSlot(logKeyOf('/', room)), room).toBe(calculateSlot(channel));
    }
    expect(calculateSlot(logKeyOf('/'))).toBe(calculateSlot('socket.io#/#'));
    expect(calculateSlot(keyInSlotOf('chat{7}', ':l'))).toBe(calculateSlot('chat{7}'));
  });

  it('spreads sessions and journals by their ids', () => {
    expect(calculateSlot(sessionKeyOf('/', 'abc'))).toBe(calculateSlot('abc'));
    expect(calculateSlot(journalKeyOf('00ff'))).toBe(calculateSlot('00ff'));
  });

  it('orders stream ids by time, then sequence', () => {
    expect(compareIds('1-0', '2-0')).toBe(-1);
    expect(compareIds('10-0', '9-5')).toBe(1);
    expect(compareIds('5-2', '5-10')).toBe(-1);
    expect(compareIds('5-3', '5-3')).toBe(0);
  });

  it('reads back the offsets it writes, and nothing else', () => {
    const o = { server: '0123456789abcdef', entry: '1764460000000-3', item: 17 };
    expect(parseOffset(formatOffset(o))).toEqual(o);
    expect(parseOffset('hello')).toBeUndefined();
    expect(parseOffset('0123:1-0:x')).toBeUndefined();
  });
});
