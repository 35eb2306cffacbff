import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import {
  EioSession,
  connectNamespace,
  httpRequest,
  type Packet,
  type Transport,
} from './support/eio-client.js';
import { Fleet, sleep, type NginxProcess } from './support/fleet.js';
import { useLibraryServers, type LibraryServer } from './support/library-servers.js';
import { referenceApp } from './support/reference-app.js';

// Standard Socket.IO v5 / Engine.IO v4 behaviour through the whole socketfleet path: nginx on the
// operator's rendered conf, three servers on the room-sharded adapter with every fast path on
// (the config defaults), a real Redis Cluster, and the reference handlers written as plain
// Socket.IO code. A bare protocol client checks every packet on the wire, over long-polling and
// WebSocket. SOCKETFLEET_CONFORMANCE_RUNS repeats the whole suite (default 10).
const RUNS = Number(process.env.SOCKETFLEET_CONFORMANCE_RUNS ?? 10);
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const SID = /^40(\/custom,)?\{"sid":"[A-Za-z0-9_-]{20}"\}$/;

describe('Socket.IO protocol conformance through the gateway', () => {
  const servers = useLibraryServers('conformance');
  const fleet = new Fleet('conformance-gateway');
  let nginx: NginxProcess;
  let started: LibraryServer[] = [];
  const open: EioSession[] = [];
  let clientNumber = 0;
  /** Sessions where a PING came between the namespace CONNECT reply and the first event. */
  const pingBetween: string[] = [];

  beforeAll(async () => {
    started = await Promise.all(
      [0, 1, 2].map(() =>
        servers.start({ parser: 'json' }, (io) => referenceApp(io), {
          serverOptions: { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT },
        }),
      ),
    );
    const parsed = parseRealtimeCluster({
      apiVersion: 'socketfleet.dev/v1alpha1',
      kind: 'RealtimeCluster',
      metadata: { name: 'conformance' },
      spec: { replicas: 3 },
    });
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    const endpoints = started.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    nginx = await fleet.nginx((_port, runtime) =>
      renderNginxConf(parsed.cluster, endpoints, runtime),
    );
  });

  afterAll(async () => {
    for (const s of open) s.close();
    await fleet.stopAll();
    if (pingBetween.length > 0)
      console.log(`PING between CONNECT and auth: ${pingBetween.join(', ')}`);
  });

  /** A new session from its own loopback address, so the consistent hash spreads them over servers. */
  async function session(transport: Transport, autoPong = true): Promise<EioSession> {
    const n = clientNumber++;
    const s = await EioSession.open(nginx.url, transport, {
      autoPong,
      localAddress: `127.90.${n % 250}.${1 + Math.floor(n / 250)}`,
    });
    open.push(s);
    return s;
  }

  /** CONNECT to a namespace and read the reference handler's `auth` event right after it. */
  async function connected(s: EioSession, nsp = '/', auth?: unknown): Promise<unknown> {
    const reply = await connectNamespace(s, nsp, auth);
    expect(reply).toMatch(SID);
    const replyIndex = s.log.findIndex((e) => e.packet === reply);
    const event = (await s.next()) as string;
    const prefix = nsp === '/' ? '42' : `42${nsp},`;
    expect(event.startsWith(`${prefix}["auth",`)).toBe(true);
    const eventIndex = s.log.findIndex((e) => e.packet === event);
    if (s.log.slice(replyIndex + 1, eventIndex).some((e) => e.packet === '2'))
      pingBetween.push(`${s.transport} ${nsp}`);
    return (JSON.parse(event.slice(prefix.length)) as unknown[])[1];
  }

  /** Each malformed packet, sent alone on a fresh connected session, must close that connection. */
  const MALFORMED: [string, Packet][] = [
    ['unknown Socket.IO packet type', '4x'],
    ['unknown Engine.IO packet type', '9hello'],
    ['EVENT with invalid JSON', '42["message"'],
    ['EVENT whose payload is not an array', '42"message"'],
    ['EVENT with a reserved event name', '42["disconnect"]'],
    ['CONNECT with a non-object payload', '40/custom,"token"'],
    ['ACK with an unparsable id', '43x[1]'],
    ['BINARY_EVENT without its attachment count', '45["message"]'],
    ['an event in a namespace the client did not join', '42/custom,["message",1]'],
  ];

  for (let run = 1; run <= RUNS; run++) {
    for (const transport of ['polling', 'websocket'] as const) {
      describe(`run ${run}/${RUNS}, ${transport}`, () => {
        it('opens a session with the configured heartbeat and payload limit', async () => {
          const s = await session(transport);
          expect(s.sid).toMatch(/^[A-Za-z0-9_-]{20}$/);
          expect(s.open).toMatchObject({
            pingInterval: PING_INTERVAL,
            pingTimeout: PING_TIMEOUT,
            maxPayload: 100000,
            upgrades: transport === 'polling' ? ['websocket'] : [],
          });
          s.close();
        });

        it('sends a PING every pingInterval and keeps a session that answers', async () => {
          const s = await session(transport);
          await sleep(PING_INTERVAL * 5);
          const pings = s.log.filter((e) => e.packet === '2').length;
          expect(pings).toBeGreaterThanOrEqual(3);
          expect(s.closed).toBe(false);
          s.close();
        });

        it('closes a session that does not answer its PING within pingTimeout', async () => {
          const s = await session(transport, false);
          const started = Date.now();
          expect(await s.waitClosed(5000)).toBe(true);
          // Not before the first PING's timeout has run out.
          expect(Date.now() - started).toBeGreaterThanOrEqual(PING_INTERVAL + PING_TIMEOUT - 50);
          expect(s.log.some((e) => e.packet === '2')).toBe(true);
        });

        it('connects to / and /custom with connect payloads, and refuses an unknown namespace', async () => {
          const s = await session(transport);
          expect(await connected(s)).toEqual({});
          expect(await connected(s, '/custom', { token: 'abc' })).toEqual({ token: 'abc' });
          expect(await connectNamespace(s, '/random')).toBe(
            '44/random,{"message":"Invalid namespace"}',
          );
          // Leaving /custom with a DISCONNECT keeps the connection and the other namespace.
          await s.send('41/custom,');
          await s.send('42["message","still here"]');
          expect(await s.next()).toBe('42["message-back","still here"]');
          expect(s.closed).toBe(false);
          s.close();
        });

        it('echoes events with every argument, and acknowledges with every argument', async () => {
          const s = await session(transport);
          await connected(s, '/', { token: '123' });
          await s.send('42["message",1,"2",{"3":[true,null]}]');
          expect(await s.next()).toBe('42["message-back",1,"2",{"3":[true,null]}]');
          await s.send('4217["message-with-ack",1,"2",{"3":[false]}]');
          expect(await s.next()).toBe('4317[1,"2",{"3":[false]}]');
          // Several packets in one payload (one POST on polling) keep their order.
          await s.send('42["message",1]', '42["message",2]', '4218["message-with-ack",3]');
          expect([await s.next(), await s.next(), await s.next()]).toEqual([
            '42["message-back",1]',
            '42["message-back",2]',
            '4318[3]',
          ]);
          await connected(s, '/custom');
          await s.send('42/custom,["message","x",{"y":1}]');
          expect(await s.next()).toBe('42/custom,["message-back","x",{"y":1}]');
          await s.send('42/custom,5["message-with-ack","z"]');
          expect(await s.next()).toBe('43/custom,5["z"]');
          s.close();
        });

        it('carries binary attachments in events and acknowledgements, both ways', async () => {
          const s = await session(transport);
          await connected(s);
          const bytes = Buffer.from([1, 2, 3, 0, 255]);
          await s.send('451-["message",{"_placeholder":true,"num":0},"text"]', bytes);
          expect(await s.next()).toBe('451-["message-back",{"_placeholder":true,"num":0},"text"]');
          expect(await s.next()).toEqual(bytes);
          await s.send('451-15["message-with-ack",{"_placeholder":true,"num":0}]', bytes);
          expect(await s.next()).toBe('461-15[{"_placeholder":true,"num":0}]');
          expect(await s.next()).toEqual(bytes);
          // The client answers the server's acknowledgement: ACK, then BINARY_ACK.
          await s.send('42["ask","q1"]');
          const question = (await s.next()) as string;
          const id = /^42(\d+)\["question","q1"\]$/.exec(question)?.[1];
          expect(id, question).toBeDefined();
          await s.send(`43${id}["a1",2]`);
          expect(await s.next()).toBe('42["answer","a1",2]');
          await s.send('42["ask","q2"]');
          const id2 = /^42(\d+)\["question","q2"\]$/.exec((await s.next()) as string)?.[1];
          await s.send(`461-${id2}[{"_placeholder":true,"num":0}]`, bytes);
          expect(await s.next()).toBe('451-["answer",{"_placeholder":true,"num":0}]');
          expect(await s.next()).toEqual(bytes);
          s.close();
        });

        for (const [what, packet] of MALFORMED) {
          it(`closes the connection on a malformed packet: ${what}`, async () => {
            const s = await session(transport);
            await connected(s);
            await s.send(packet).catch(() => undefined);
            // Within the time the heartbeat test keeps an answering session open.
            expect(await s.waitClosed(PING_INTERVAL * 5)).toBe(true);
          });
        }

        if (transport === 'polling') {
          it('upgrades a polling session to WebSocket and keeps its namespaces', async () => {
            const s = await session('polling');
            await connected(s);
            await s.upgrade();
            await s.send('42["message","over websocket"]');
            expect(await s.next()).toBe('42["message-back","over websocket"]');
            // The pending poll was ended: with a NOOP during the probe, or with the CLOSE of
            // the polling transport when the UPGRADE came first (engine.io checks every 100 ms).
            expect(s.log.some((e) => e.packet === '6' || e.packet === '1')).toBe(true);
            expect(s.closed).toBe(false);
            s.close();
          });

          it('answers Engine.IO errors with their codes', async () => {
            const base = `${nginx.url}/socket.io/`;
            expect(await httpRequest(`${base}?EIO=4&transport=bogus`)).toEqual({
              status: 400,
              body: '{"code":0,"message":"Transport unknown"}',
            });
            expect(await httpRequest(`${base}?EIO=4&transport=polling&sid=nope`)).toEqual({
              status: 400,
              body: '{"code":1,"message":"Session ID unknown"}',
            });
            expect(
              await httpRequest(`${base}?EIO=4&transport=polling`, { method: 'POST', body: '40' }),
            ).toEqual({ status: 400, body: '{"code":2,"message":"Bad handshake method"}' });
            expect(await httpRequest(`${base}?EIO=3&transport=polling`)).toEqual({
              status: 400,
              body: '{"code":5,"message":"Unsupported protocol version"}',
            });
          });
        }
      });
    }
  }

  it('never puts a PING between the namespace CONNECT reply and the handler’s first emit', async () => {
    // Sessions that send their CONNECTs around the first PING (0-450 ms after the handshake,
    // pingInterval 300 ms), many at once, through the gateway and straight to a server.
    const pingsSeen: number[] = [];
    let closedEarly = 0;
    const attempt = async (base: string, transport: Transport, delay: number): Promise<void> => {
      const n = clientNumber++;
      const s = await EioSession.open(base, transport, {
        localAddress: `127.91.${n % 250}.${1 + Math.floor(n / 250)}`,
      });
      open.push(s);
      await sleep(delay);
      try {
        await connected(s);
        await connected(s, '/custom', { n });
      } catch (err) {
        // A PONG later than the 200 ms pingTimeout (this process runs the servers and all these
        // clients) ends the session; such a session says nothing about packet order.
        if (s.closed) {
          closedEarly++;
          return;
        }
        const t0 = s.log[0]?.at ?? 0;
        const trace = s.log.map((e) => `${e.at - t0}ms ${String(e.packet).slice(0, 40)}`);
        throw new Error(
          `${transport} via ${base === nginx.url ? 'nginx' : 'direct'}, CONNECT after ${delay} ms: ${String(err)}; received: ${trace.join(' | ')}`,
        );
      }
      pingsSeen.push(s.log.filter((e) => e.packet === '2').length);
      s.close();
    };
    const direct = `http://127.0.0.1:${started[0]!.port}`;
    // In waves of 20: a 200 ms pingTimeout leaves no room for a loaded event loop (the servers
    // share this process), and a missed PONG would close the session.
    for (let wave = 0; wave < 8; wave++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => {
          const i = wave * 20 + j;
          const base = i % 4 < 2 ? nginx.url : direct;
          return attempt(base, i % 2 ? 'polling' : 'websocket', (i * 37) % 450);
        }),
      );
    }
    // The CONNECTs did meet PINGs: many sessions saw at least one before they were done.
    console.log(
      `PING order: ${pingsSeen.length} sessions checked, ${pingsSeen.filter((n) => n > 0).length} of them saw a PING while connecting, ${closedEarly} closed by a late PONG, ${pingBetween.length} with a PING between CONNECT and auth`,
    );
    expect(pingsSeen.length).toBeGreaterThan(120);
    expect(pingsSeen.filter((n) => n > 0).length).toBeGreaterThan(40);
    expect(pingBetween).toEqual([]);
  });
});
