// The relay with client authentication on (what the operator configures by default): real
// entrypoint servers, real Redis, real socket.io-client. Without a valid token (missing, forged,
// expired, or signed for another key) the handshake is refused; with one, clients join and
// publish across servers. About 5 s.
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_AUTH_KEY_ENV, signToken } from '../../server-image/src/client-auth.js';
import { Fleet, type ServerProcess } from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

// What the operator puts in the Secret: 48 random bytes, base64url; the servers use its UTF-8 bytes.
const keyText = randomBytes(48).toString('base64url');
const key = Buffer.from(keyText, 'utf8');
const sockets: Socket[] = [];

function open(url: string, token?: string): Promise<Socket> {
  const s = io(url, {
    transports: ['websocket'],
    parser: msgpackParser,
    forceNew: true,
    reconnection: false,
    ...(token !== undefined ? { auth: { token } } : {}),
  });
  sockets.push(s);
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

async function refusal(url: string, token?: string): Promise<string> {
  try {
    await open(url, token);
    return 'connected';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('relay client authentication (jwt)', () => {
  const fleet = new Fleet('client-auth');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  const now = (): number => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    const env = { [CLIENT_AUTH_KEY_ENV]: keyText };
    servers = await Promise.all(
      [0, 1].map(() => fleet.server(redis, { clientAuth: 'jwt' }, { env })),
    );
  });

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await fleet.stopAll();
  });

  it('refuses a handshake without a valid token, saying why', async () => {
    const url = servers[0]!.url;
    expect(await refusal(url)).toBe('unauthorized: no token in the handshake auth');
    expect(await refusal(url, 'not-a-jwt')).toBe('unauthorized: token is not a JWT');
    expect(
      await refusal(url, signToken({ sub: 'mallory', exp: now() + 60 }, randomBytes(48))),
    ).toBe('unauthorized: bad token signature');
    expect(await refusal(url, signToken({ sub: 'late', exp: now() - 3600 }, key))).toBe(
      'unauthorized: token expired',
    );
    expect(await refusal(url, signToken({ sub: 'forever' }, key))).toBe(
      'unauthorized: token has no exp',
    );
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"exp":${now() + 60}}`).toString('base64url')}.`;
    expect(await refusal(url, none)).toBe('unauthorized: token must be signed HS256');
  });

  it('lets clients with a valid token join and publish across servers', async () => {
    const token = (sub: string): string => signToken({ sub, exp: now() + 300 }, key);
    const [a, b] = await Promise.all([
      open(servers[0]!.url, token('alice')),
      open(servers[1]!.url, token('bob')),
    ]);
    const got: unknown[] = [];
    b.on('message', (m) => got.push(m));
    expect(await b.emitWithAck('join', 'lobby')).toMatchObject({ ok: true });
    expect(await a.emitWithAck('publish', { room: 'lobby', data: 'hi' })).toEqual({ ok: true });
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([{ room: 'lobby', data: 'hi' }]);
  });
});
