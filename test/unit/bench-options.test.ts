import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../operator/bench/options.js';

describe('parseBenchArgs', () => {
  it('fills defaults and derives publishers and workers', () => {
    const r = parseBenchArgs(
      ['--url', 'http://127.0.0.1:8080', '--clients', '40000', '--rate', '300'],
      {},
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.options).toMatchObject({
      clients: 40000,
      rooms: 10,
      rate: 300,
      durationS: 10,
      publishers: 6,
      workers: 3,
      parser: 'msgpack',
      transports: ['websocket'],
      roomQuery: false,
      maxLoss: 0,
      maxErrors: 0,
      spreadSources: true,
      rampRate: 0,
    });
  });

  it('paces the ramp when asked', () => {
    const r = parseBenchArgs(['--url', 'http://h', '--ramp-rate', '250'], {});
    expect(r.ok && r.options.rampRate).toBe(250);
  });

  it('reads the Redis password from the environment only, and parses lists', () => {
    const r = parseBenchArgs(
      [
        '--url',
        'http://h:1',
        '--redis',
        '127.0.0.1:6379,redis-1:6380',
        '--pids',
        '10,11',
        '--metrics',
        'http://a/metrics',
        '--metrics',
        'http://b/metrics',
      ],
      { BENCH_REDIS_PASSWORD: 'pw' },
    );
    expect(r.ok && r.options.redis).toEqual([
      { host: '127.0.0.1', port: 6379 },
      { host: 'redis-1', port: 6380 },
    ]);
    expect(r.ok && r.options.redisPassword).toBe('pw');
    expect(r.ok && r.options.pids).toEqual([10, 11]);
    expect(r.ok && r.options.metrics).toEqual(['http://a/metrics', 'http://b/metrics']);
  });

  it.each([
    [[], '--url is required, e.g. --url http://127.0.0.1:8080.'],
    [['--url', 'nope'], '--url must be an absolute URL such as http://127.0.0.1:8080, got "nope".'],
    [['--url', 'http://h', '--clients', '0'], '--clients must be an integer >= 1, got "0".'],
    [['--url', 'http://h', '--parser', 'xml'], '--parser must be msgpack or json, got "xml".'],
    [
      ['--url', 'http://h', '--transports', 'carrier-pigeon'],
      '--transports must list polling and/or websocket, got "carrier-pigeon".',
    ],
    [
      ['--url', 'http://h', '--max-loss', '2'],
      '--max-loss must be a fraction between 0 and 1, got "2".',
    ],
    [
      ['--url', 'http://h', '--redis', 'nohost'],
      '--redis expects host:port[,host:port...], got "nohost".',
    ],
    [
      ['--url', 'http://h', '--ramp-rate', '1.5'],
      '--ramp-rate must be an integer >= 0, got "1.5".',
    ],
    [
      ['--url', 'http://h', '--clients', '40000', '--workers', '2'],
      '--workers 2 would put more than 15000 sockets in one process; use at least 3.',
    ],
  ])('rejects %j with one sentence', (argv, error) => {
    expect(parseBenchArgs(argv, {})).toEqual({ ok: false, error });
  });

  it('rejects unknown flags', () => {
    const r = parseBenchArgs(['--url', 'http://h', '--bogus'], {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/--bogus/);
  });
});
