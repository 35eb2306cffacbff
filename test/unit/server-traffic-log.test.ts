import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server-image/src/load-config.js';
import { TrafficLog } from '../../server-image/src/traffic-log.js';

function capture(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

describe('traffic summary line', () => {
  it('writes one info line with the counts of the window, then starts from zero', () => {
    const { lines, logger } = capture();
    const log = new TrafficLog(logger, 30_000);
    log.add('sessions');
    log.add('eventsIn', 3);
    log.add('delivered', 12);
    log.add('busOut', 2);
    log.add('busIn', 4);
    log.add('lost', 1);
    expect(log.flush()).toEqual({
      sessions: 1,
      eventsIn: 3,
      delivered: 12,
      busOut: 2,
      busIn: 4,
      lost: 1,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'traffic', delivered: 12, lost: 1 });
    expect(typeof lines[0]!.windowMs).toBe('number');
    log.add('delivered', 5);
    expect(log.flush()).toMatchObject({ delivered: 5, eventsIn: 0 });
  });

  it('stays quiet when nothing moved, and when turned off', () => {
    const { lines, logger } = capture();
    expect(new TrafficLog(logger, 30_000).flush()).toBeUndefined();
    const off = new TrafficLog(logger, 0);
    off.add('delivered');
    off.start();
    off.stop();
    expect(lines).toEqual([]);
  });

  it('is 30 s by default and set by SOCKETFLEET_TRAFFIC_LOG_SECONDS', () => {
    const base = { SOCKETFLEET_CONFIG: '', SOCKETFLEET_REDIS_NODES: 'redis:6379' };
    const def = loadConfig(base);
    expect(def.ok && def.config.trafficLogSeconds).toBe(30);
    const set = loadConfig({ ...base, SOCKETFLEET_TRAFFIC_LOG_SECONDS: '5' });
    expect(set.ok && set.config.trafficLogSeconds).toBe(5);
  });
});
