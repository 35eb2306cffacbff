import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';
import { parse } from 'yaml';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import { CLIENT_AUTH_KEY_ENV, signToken } from '../../server-image/src/client-auth.js';
import {
  Fleet,
  ROOT,
  sleep,
  until,
  type NginxProcess,
  type ServerProcess,
} from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';

// examples/apps/chat as its RealtimeCluster runs it: three processes of the app's own server.js
// started through the image's entrypoint (SOCKETFLEET_APP, as its Dockerfile sets it), a real
// Redis Cluster, nginx on the conf the operator renders for examples/apps/chat/realtimecluster.yaml,
// client JWTs (the cluster's default auth), and socket.io-clients from distinct addresses.
const EXAMPLE = join(ROOT, 'examples', 'apps', 'chat');

describe('the chat example app across pods', () => {
  const fleet = new Fleet('chat');
  const key = randomBytes(48).toString('base64');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let nginx: NginxProcess;
  const clients: Socket[] = [];
  let address = 0;

  beforeAll(async () => {
    redis = await fleet.redisCluster();
    servers = await Promise.all(
      [0, 1, 2].map(() =>
        fleet.server(
          redis,
          { clientAuth: 'jwt', logLevel: 'warn' },
          {
            env: {
              SOCKETFLEET_APP: join(EXAMPLE, 'server.js'),
              [CLIENT_AUTH_KEY_ENV]: key,
            },
          },
        ),
      ),
    );
    const parsed = parseRealtimeCluster(
      parse(readFileSync(join(EXAMPLE, 'realtimecluster.yaml'), 'utf8')) as unknown,
    );
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    const endpoints = servers.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    nginx = await fleet.nginx((_port, runtime) =>
      renderNginxConf(parsed.cluster, endpoints, runtime),
    );
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await fleet.stopAll();
  });

  const token = (sub: string): string =>
    signToken({ sub, exp: Math.floor(Date.now() / 1000) + 300 }, Buffer.from(key, 'utf8'));

  /** A client through the gateway from its own address; resolves connected or rejects with the refusal. */
  function open(nsp: string, auth: Record<string, unknown>, polling = false): Promise<Socket> {
    const localAddress = `127.95.${address++}.1`;
    const socket = io(`${nginx.url}${nsp}`, {
      transports: polling ? ['polling', 'websocket'] : ['websocket'],
      parser: msgpackParser,
      forceNew: true,
      reconnection: false,
      auth,
      // In Node, engine.io-client hands `agent` to the http and ws layers.
      agent: new http.Agent({ localAddress, keepAlive: true }) as unknown as string,
      localAddress,
    } as Parameters<typeof io>[1]);
    clients.push(socket);
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', (err) => reject(err));
    });
  }

  /** Which server each new connection landed on, from the servers' own client counts. */
  async function counts(): Promise<number[]> {
    return Promise.all(servers.map((s) => s.metric('socketfleet_connected_clients')));
  }

  it('refuses clients without a valid token or display name (middleware auth)', async () => {
    await expect(open('/team-blue', {})).rejects.toThrow(
      'unauthorized: no token in the handshake auth',
    );
    await expect(open('/team-blue', { token: token('x'.repeat(40)) })).rejects.toThrow(
      'a display name of 1-32 letters, digits, spaces or _.- is required',
    );
    await expect(open('/', { token: token('') })).rejects.toThrow('a display name');
  });

  it('runs a team channel across pods: join with members from every pod, multi-argument binary messages, polls with emitWithAck', async () => {
    const team: Socket[] = [];
    const pod: number[] = [];
    for (let i = 0; i < 9; i++) {
      const before = await counts();
      team.push(await open('/team-blue', { token: token(`user ${i}`) }, i % 3 === 0));
      const after = await counts();
      pod.push(after.findIndex((n, j) => n > before[j]!));
    }
    // Distinct addresses spread over the consistent hash: the team spans several pods.
    expect(new Set(pod).size).toBeGreaterThanOrEqual(2);

    let last: { ok: boolean; members?: string[] } = { ok: false };
    for (const member of team) {
      last = (await member.emitWithAck('join', 'general')) as typeof last;
      expect(last.ok).toBe(true);
    }
    // fetchSockets() from the last joiner's pod lists the members on every pod.
    expect(last.members).toEqual(Array.from({ length: 9 }, (_, i) => `user ${i}`).sort());

    const inbox = team.map(() => [] as unknown[][]);
    team.forEach((m, i) => m.on('said', (...args: unknown[]) => inbox[i]!.push(args)));
    const picture = randomBytes(2048);
    const ack = (await team[0]!.emitWithAck('say', 'general', 'hello team', picture)) as {
      ok: boolean;
      id: string;
    };
    expect(ack.ok).toBe(true);
    await until('every other member to get the message', () =>
      inbox.slice(1).every((m) => m.length === 1),
    );
    await sleep(300);
    expect(inbox[0]).toHaveLength(0);
    for (const m of inbox.slice(1)) {
      const [channel, from, text, at, attachment] = m[0]!;
      expect([channel, from, text]).toEqual(['general', 'user 0', 'hello team']);
      expect(typeof at).toBe('number');
      expect(Buffer.from(attachment as Uint8Array)).toEqual(picture);
      expect(m).toHaveLength(1);
    }

    // A poll: emitWithAck to the channel on every pod, one answer per other member.
    team.forEach((m, i) =>
      m.on('vote', (_channel: string, _q: string, answer: (v: unknown) => void) =>
        answer({ voter: `user ${i}`, choice: i % 2 ? 'tea' : 'coffee' }),
      ),
    );
    const poll = (await team[4]!.emitWithAck('poll', 'general', 'tea or coffee?')) as {
      ok: boolean;
      answers: { voter: string }[];
    };
    expect(poll.ok).toBe(true);
    expect(poll.answers.map((a) => a.voter).sort()).toEqual(
      Array.from({ length: 9 }, (_, i) => `user ${i}`)
        .filter((v) => v !== 'user 4')
        .sort(),
    );

    // Another team's channel of the same name is another room: nothing leaks across namespaces.
    const red = await open('/team-red', { token: token('outsider') });
    expect(await red.emitWithAck('join', 'general')).toMatchObject({
      ok: true,
      members: ['outsider'],
    });
    const redInbox: unknown[] = [];
    red.on('said', (...args: unknown[]) => redInbox.push(args));
    await team[1]!.emitWithAck('say', 'general', 'blue only');
    await until('the blue members to get it', () => inbox[2]!.length === 2);
    await sleep(300);
    expect(redInbox).toHaveLength(0);
  });

  it('lists who is online and announces to every pod from the lobby (fetchSockets, serverSideEmit)', async () => {
    const lobby: Socket[] = [];
    const pod = new Set<number>();
    for (let i = 0; pod.size < 2 || i < 3; i++) {
      const before = await counts();
      lobby.push(await open('/', { token: token(`lobby ${i}`) }));
      const after = await counts();
      pod.add(after.findIndex((n, j) => n > before[j]!));
      if (i > 20) throw new Error('every lobby client landed on one pod');
    }
    const names = (await lobby[0]!.emitWithAck('online')) as string[];
    expect(names).toEqual(lobby.map((_, i) => `lobby ${i}`).sort());
    const heard = lobby.map(() => [] as unknown[][]);
    lobby.forEach((c, i) => c.on('announcement', (...args: unknown[]) => heard[i]!.push(args)));
    expect(await lobby[1]!.emitWithAck('announce', 'release at 5')).toEqual({ ok: true });
    await until('every lobby client on every pod to hear it', () =>
      heard.every((h) => h.length === 1),
    );
    await sleep(300);
    expect(heard.map((h) => h.length)).toEqual(lobby.map(() => 1));
    expect(heard[0]![0]).toEqual(['lobby 1', 'release at 5']);
  });
});
