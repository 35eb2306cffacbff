import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request, createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import type { EndpointSliceLike } from '../../operator/desired/upstreams.js';
import { NginxReloader, pidFromFile } from '../../operator/gateway/reloader.js';
import { GatewaySync } from '../../operator/gateway/sync.js';
import type { Endpoint } from '../../operator/desired/types.js';
import { clusterFrom, manifest } from './helpers.js';
import {
  freePort,
  nginxDir,
  startNginx,
  stop,
  waitFor,
  writeConf,
  type NginxDir,
} from './nginx-process.js';

/**
 * The rendered conf driving Debian's real nginx in front of real HTTP/WebSocket upstreams:
 * stickiness per balance mode, the 503 placeholder, headers, and a graceful reload.
 */

interface Upstream {
  name: string;
  endpoint: Endpoint;
  server: Server;
  wss: WebSocketServer;
}

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** `draining`: refuses new sessions (no sid) with 403, as a draining Socket.IO server does. */
async function upstream(name: string, options: { draining?: boolean } = {}): Promise<Upstream> {
  const draining = options.draining === true;
  const server = createServer((req, res) => {
    if (draining && !(req.url ?? '').includes('sid=')) {
      res.writeHead(403).end('server is draining');
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        name,
        method: req.method,
        xff: req.headers['x-forwarded-for'] ?? null,
        realIp: req.headers['x-real-ip'] ?? null,
      }),
    );
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) =>
    ws.on('message', (m) => ws.send(`${name}:${(m as Buffer).toString()}`)),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { name, endpoint: { ip: '127.0.0.1', port }, server, wss };
}

interface Gateway {
  d: NginxDir;
  child: ChildProcess;
  port: number;
}

async function gateway(
  spec: Record<string, unknown>,
  upstreams: Endpoint[],
  healthPort?: number,
): Promise<Gateway> {
  const port = await freePort();
  const d = nginxDir(port);
  if (healthPort !== undefined) d.runtime.healthPort = healthPort;
  const cluster = clusterFrom(manifest(spec));
  writeConf(d.confPath, renderNginxConf(cluster, upstreams, d.runtime));
  const child = startNginx(d);
  cleanups.push(async () => {
    await stop(child);
    d.cleanup();
  });
  // A PROXY-protocol listener drops a bare GET, so wait on the probe listener when there is one.
  await waitFor('nginx to listen', async () =>
    (await get(healthPort ?? port, '/')).status > 0 ? true : undefined,
  );
  return { d, child, port };
}

/** One raw request on a new connection, so a PROXY protocol header can go first. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Not end(): nginx takes a half-closed client for one that gave up and drops the request.
    const sock = connect(port, '127.0.0.1', () => sock.write(text));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (out += c));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

function get(
  port: number,
  path: string,
  localAddress = '127.0.0.1',
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, localAddress, headers, agent: false, method },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function servedBy(port: number, path: string, localAddress = '127.0.0.1'): Promise<string> {
  const r = await get(port, path, localAddress);
  expect(r.status).toBe(200);
  return (JSON.parse(r.body) as { name: string }).name;
}

describe('nginx with the rendered conf', () => {
  it('answers 503 with Retry-After while no server is ready', async () => {
    const g = await gateway({}, []);
    const r = await get(g.port, '/socket.io/?EIO=4&transport=polling');
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
    expect(r.body).toBe('no ready Socket.IO server\n');
  });

  it('ip-hash keeps one /24 on one server and spreads different /24s', async () => {
    const ups = await Promise.all(['a', 'b', 'c'].map((n) => upstream(n)));
    const g = await gateway(
      { gateway: { balance: 'ip-hash' } },
      ups.map((u) => u.endpoint),
    );
    const seen = new Set<string>();
    for (let i = 1; i <= 24; i++) {
      const first = await servedBy(g.port, '/', `127.0.${i}.1`);
      // Another host of the same /24 lands on the same server.
      expect(await servedBy(g.port, '/', `127.0.${i}.2`)).toBe(first);
      seen.add(first);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('consistent-hash keys on the full address', async () => {
    const ups = await Promise.all(['a', 'b', 'c'].map((n) => upstream(n)));
    const g = await gateway(
      { gateway: { balance: 'consistent-hash' } },
      ups.map((u) => u.endpoint),
    );
    const seen = new Set<string>();
    for (let i = 1; i <= 24; i++) {
      const addr = `127.0.0.${i + 1}`;
      const first = await servedBy(g.port, '/', addr);
      expect(await servedBy(g.port, '/', addr)).toBe(first);
      seen.add(first);
    }
    // Within one /24, ip_hash could never do this.
    expect(seen.size).toBeGreaterThan(1);
  });

  it('room-affinity sends one room to one server from any client', async () => {
    const ups = await Promise.all(['a', 'b', 'c'].map((n) => upstream(n)));
    const g = await gateway(
      { gateway: { balance: 'room-affinity' } },
      ups.map((u) => u.endpoint),
    );
    const seen = new Set<string>();
    for (let room = 0; room < 24; room++) {
      const path = `/socket.io/?EIO=4&transport=polling&room=r${room}`;
      const first = await servedBy(g.port, path, '127.0.1.1');
      expect(await servedBy(g.port, path, '127.0.2.1')).toBe(first);
      expect(await servedBy(g.port, path, '127.0.3.1')).toBe(first);
      seen.add(first);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('retries a handshake refused by a draining or dead server elsewhere, never a session request', async () => {
    const draining = await upstream('draining', { draining: true });
    const b = await upstream('b');
    const dead: Endpoint = { ip: '127.0.0.1', port: await freePort() };
    const g = await gateway({}, [draining.endpoint, b.endpoint, dead]);
    const handshake = '/socket.io/?EIO=4&transport=polling';
    for (let i = 1; i <= 24; i++) {
      // Whichever server the address hashes to, the client gets a session from the healthy one.
      expect(await servedBy(g.port, handshake, `127.0.0.${i + 1}`)).toBe('b');
    }
    // A request of a session goes to its hashed server only: the draining one still serves it,
    // and the dead one answers the client with nginx's own 502 instead of another server's
    // "Session ID unknown". (A fresh gateway: the handshakes above made nginx skip the dead
    // server for fail_timeout, as it rightly does for every request.)
    const fresh = await gateway({}, [draining.endpoint, b.endpoint, dead]);
    const bySid = new Map<string, number>();
    for (let i = 1; i <= 24; i++) {
      const r = await get(fresh.port, `${handshake}&sid=s${i}`, `127.0.0.${i + 1}`);
      const who = r.status === 200 ? (JSON.parse(r.body) as { name: string }).name : r.status;
      bySid.set(String(who), (bySid.get(String(who)) ?? 0) + 1);
    }
    expect([...bySid.keys()].sort()).toEqual(['502', 'b', 'draining']);

    // A POST of a session (long-polling upload) keeps its method through the session location.
    const only = await gateway({}, [b.endpoint]);
    const post = await get(only.port, `${handshake}&sid=x`, '127.0.0.1', {}, 'POST');
    expect(JSON.parse(post.body)).toMatchObject({ name: 'b', method: 'POST' });
    // Nobody can take the handshake: 503 with Retry-After, not nginx's 502.
    const none = await gateway({}, [dead]);
    const refused = await get(none.port, handshake);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
  });

  it('passes WebSocket upgrades and forwards the client address', async () => {
    const a = await upstream('a');
    const g = await gateway({}, [a.endpoint]);
    const info = JSON.parse((await get(g.port, '/', '127.0.9.1')).body) as {
      xff: string;
      realIp: string;
    };
    expect(info.realIp).toBe('127.0.9.1');
    expect(info.xff).toBe('127.0.9.1');

    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/socket.io/?EIO=4&transport=websocket`);
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const reply = new Promise<string>((r) =>
      ws.once('message', (m) => r((m as Buffer).toString())),
    );
    ws.send('hello');
    expect(await reply).toBe('a:hello');
  });

  it('answers the probe paths on their own plain-HTTP listener, PROXY protocol or not', async () => {
    const a = await upstream('a');
    const healthPort = await freePort();
    const g = await gateway(
      { gateway: { proxyProtocol: true, trustedProxies: ['127.0.0.0/8'] } },
      [a.endpoint],
      healthPort,
    );
    for (const path of ['/healthz', '/readyz']) {
      const r = await get(healthPort, path);
      expect(r.status, path).toBe(200);
      expect(r.body, path).toBe('ok\n');
    }
    // Nothing else is served there: the probe listener is not a way around the proxy.
    expect((await get(healthPort, '/socket.io/?EIO=4&transport=polling')).status).toBe(404);
    // Without its header the gateway port drops a request, which is why probes cannot use it;
    // with one it still proxies and takes the client address from the header.
    expect(await rawRequest(g.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe(
      '',
    );
    const proxied = await rawRequest(
      g.port,
      'PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(proxied).toContain('"name":"a"');
    expect(proxied).toContain('"realIp":"203.0.113.7"');
  });

  it('the sync sidecar follows EndpointSlices: reloads in place, keeps WebSockets, refuses a bad block', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const cluster = clusterFrom(manifest());
    const port = await freePort();
    const d = nginxDir(port);
    d.runtime.upstreamsFile = join(d.dir, 'upstreams.conf');
    writeConf(d.confPath, renderNginxConf(cluster, [], d.runtime));
    // Without nginx -t: the pod's sidecar has no nginx binary and relies on the master's check.
    const reloader = new NginxReloader({
      upstreamsFile: d.runtime.upstreamsFile,
      master: () => pidFromFile(d.runtime.pidFile),
      timeoutMs: 3000,
    });
    const slices: EndpointSliceLike[] = [
      {
        ports: [{ name: 'socketio', port: a.endpoint.port }],
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      },
    ];
    const log = pino({ level: 'silent' });
    const sync = new GatewaySync(() => slices, {
      balance: 'consistent-hash',
      leavingGraceMs: 0,
      reloader,
      log,
    });
    cleanups.push(() => sync.stop());
    await sync.syncNow();
    const child = startNginx(d);
    cleanups.push(async () => {
      await stop(child);
      d.cleanup();
    });
    await waitFor('nginx to listen', async () =>
      (await get(port, '/')).status > 0 ? true : undefined,
    );
    expect(await servedBy(port, '/')).toBe('a');
    const masterPid = readFileSync(d.runtime.pidFile, 'utf8').trim();
    expect(pidFromFile(d.runtime.pidFile)).toBe(Number(masterPid));
    // A pid file left by a killed master names whoever has the pid now: never signalled.
    const stale = join(d.dir, 'stale.pid');
    writeFileSync(stale, `${process.pid}\n`);
    expect(pidFromFile(stale)).toBeUndefined();

    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });

    // The slice changes: a is terminating (not ready), b is ready.
    slices[0] = {
      ports: [{ name: 'socketio', port: b.endpoint.port }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
    };
    const t0 = Date.now();
    await sync.syncNow();
    // Resolved once new workers run: the very next request already sees the new upstreams.
    expect(await servedBy(port, '/')).toBe('b');
    expect(Date.now() - t0).toBeLessThan(2000);
    // Reloaded, not restarted: same master, and the old connection still talks to its server.
    expect(child.exitCode).toBeNull();
    expect(readFileSync(d.runtime.pidFile, 'utf8').trim()).toBe(masterPid);
    const reply = new Promise<string>((r) =>
      ws.once('message', (m) => r((m as Buffer).toString())),
    );
    ws.send('still-here');
    expect(await reply).toBe('a:still-here');

    // A block nginx refuses: no new workers, the previous file is put back, traffic unchanged.
    await expect(reloader.apply('this is not nginx\n')).rejects.toThrow(
      /started no new workers within 3000 ms of SIGHUP/,
    );
    expect(readFileSync(d.runtime.upstreamsFile, 'utf8')).toContain(`127.0.0.1:${b.endpoint.port}`);
    expect(await servedBy(port, '/')).toBe('b');
    // The same render again is a no-op, not a reload.
    expect(await reloader.apply(readFileSync(d.runtime.upstreamsFile, 'utf8'))).toBe('unchanged');
  }, 60_000);
});
