// spec.gateway.tls on the real data path: certificates made with openssl, Debian's nginx running
// the conf the operator renders with TLS, real servers on a real Redis Cluster, and real
// socket.io-clients over https/wss that trust only the test's CA. Also: the plain port's 308,
// the protocol/cipher floor, no HTTP/2, and a renewed certificate picked up by the sync
// sidecar's file watch and a graceful reload while an open WebSocket stays. About 10 s.
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import tls from 'node:tls';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { renderNginxConf, renderUpstreamBlock } from '../../operator/desired/nginx.js';
import type { Endpoint } from '../../operator/desired/types.js';
import { FileWatch } from '../../operator/gateway/file-watch.js';
import { NginxReloader, pidFromFile } from '../../operator/gateway/reloader.js';
import { collect } from './support/clients.js';
import {
  Fleet,
  freePort,
  sleep,
  until,
  type NginxProcess,
  type ServerProcess,
} from './support/fleet.js';
import type { RedisClusterFixture } from './support/redis-cluster.js';
import { openssl } from './support/test-certs.js';

function cluster(): RealtimeCluster {
  const parsed = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'tls' },
    spec: { replicas: 2, redis: { shards: 1 }, gateway: { tls: { secretName: 'tls-cert' } } },
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.cluster;
}

/** A CA, and a server certificate for 127.0.0.1 and localhost signed by it (`serial` differs). */
function makeCerts(dir: string, serial: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=socketfleet test CA',
  ]);
  issue(dir, serial);
}

function issue(dir: string, serial: string): void {
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'next.key',
    '-out',
    'next.csr',
    '-subj',
    '/CN=gateway',
  ]);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'next.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-set_serial',
    serial,
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
    '-out',
    'next.crt',
  ]);
  // Key first, then certificate: nginx reads both at a reload, and the watch looks at the cert.
  writeFileSync(join(dir, 'tls.key'), readFileSync(join(dir, 'next.key')));
  writeFileSync(join(dir, 'tls.crt'), readFileSync(join(dir, 'next.crt')));
}

const open: Socket[] = [];
function connectTls(
  url: string,
  options: { transports: ('polling' | 'websocket')[]; ca?: Buffer },
): Promise<Socket> {
  const opts: Record<string, unknown> = {
    transports: options.transports,
    parser: msgpackParser,
    forceNew: true,
    reconnection: false,
    timeout: 10_000,
  };
  if (options.ca) opts.ca = options.ca;
  const socket = io(url, opts as Partial<ManagerOptions & SocketOptions>);
  open.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(err));
  });
}

/** One TLS handshake: what was negotiated, or the error. */
function handshake(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ protocol: string | null; alpn: string | false | null; serial: string } | Error> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...options }, () => {
      const out = {
        protocol: s.getProtocol(),
        alpn: s.alpnProtocol,
        serial: s.getPeerCertificate().serialNumber,
      };
      s.destroy();
      resolve(out);
    });
    s.once('error', (err: Error) => resolve(err));
  });
}

describe('client TLS at the gateway', () => {
  const fleet = new Fleet('gateway-tls');
  let redis: RedisClusterFixture;
  let servers: ServerProcess[];
  let nginx: NginxProcess;
  let tlsPort: number;
  let ca: Buffer;
  let upstreamsFile: string;
  let endpoints: Endpoint[];

  beforeAll(async () => {
    makeCerts(fleet.dir, '0x1001');
    ca = readFileSync(join(fleet.dir, 'ca.crt'));
    redis = await fleet.redisCluster({ masters: 1 });
    servers = await Promise.all([fleet.server(redis), fleet.server(redis)]);
    endpoints = servers.map((s) => ({ ip: '127.0.0.1', port: s.port }));
    const c = cluster();
    tlsPort = await freePort();
    // As in the pod: the upstream block lives in its own file, which the reloader rewrites.
    upstreamsFile = join(fleet.dir, 'upstreams.conf');
    writeFileSync(upstreamsFile, renderUpstreamBlock(c.spec.gateway.balance, endpoints));
    nginx = await fleet.nginx((_port, runtime) =>
      renderNginxConf(c, endpoints, {
        ...runtime,
        upstreamsFile,
        tls: {
          listenPort: tlsPort,
          certFile: join(fleet.dir, 'tls.crt'),
          keyFile: join(fleet.dir, 'tls.key'),
          redirectToPort: tlsPort,
        },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    for (const s of open.splice(0)) s.close();
    await fleet.stopAll();
  });

  it('carries Socket.IO over wss and over https long-polling, trusting only the CA', async () => {
    const url = `https://127.0.0.1:${tlsPort}`;
    const ws = await connectTls(url, { transports: ['websocket'], ca });
    const polling = await connectTls(url, { transports: ['polling'], ca });
    const upgraded = await connectTls(url, { transports: ['polling', 'websocket'], ca });
    await until('the upgrade over TLS', () => upgraded.io.engine.transport.name === 'websocket');
    const members = [ws, polling, upgraded];
    for (const m of members)
      expect(await m.emitWithAck('join', 'secure')).toMatchObject({ ok: true });
    const inboxes = members.map((m) => collect(m));
    for (const [i, m] of members.entries()) {
      expect(await m.emitWithAck('publish', { room: 'secure', data: `t${i}` })).toEqual({
        ok: true,
      });
    }
    await until('3 messages at each member', () => inboxes.every((b) => b.length === 3));
    await sleep(200);
    expect(inboxes.map((b) => b.length)).toEqual([3, 3, 3]);
    expect(polling.io.engine.transport.name).toBe('polling');

    // Without the CA the certificate is not trusted: TLS is really checked end to end.
    await expect(connectTls(url, { transports: ['websocket'] })).rejects.toThrow();
    await expect(connectTls(url, { transports: ['polling'] })).rejects.toThrow();
  });

  it('redirects plain HTTP with 308 and proxies nothing in clear text', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .get(
          { host: '127.0.0.1', port: nginx.port, path: '/socket.io/?EIO=4&transport=polling' },
          resolve,
        )
        .on('error', reject);
    });
    res.resume();
    expect(res.statusCode).toBe(308);
    expect(res.headers.location).toBe(
      `https://127.0.0.1:${tlsPort}/socket.io/?EIO=4&transport=polling`,
    );
  });

  it('speaks TLS 1.2+ with AEAD ciphers only, and no HTTP/2', async () => {
    const modern = await handshake(tlsPort, { ca, ALPNProtocols: ['h2', 'http/1.1'] });
    expect(modern).not.toBeInstanceOf(Error);
    expect((modern as { protocol: string }).protocol).toBe('TLSv1.3');
    expect((modern as { alpn: string | false | null }).alpn).not.toBe('h2');
    const tls12 = await handshake(tlsPort, { ca, maxVersion: 'TLSv1.2' });
    expect((tls12 as { protocol: string }).protocol).toBe('TLSv1.2');
    // A CBC suite without forward secrecy, which the client offers and the server must refuse.
    const weak = await handshake(tlsPort, { ca, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' });
    expect(weak).toBeInstanceOf(Error);
  });

  it('serves a renewed certificate after the file watch reloads nginx, keeping open WebSockets', async () => {
    const url = `https://127.0.0.1:${tlsPort}`;
    const held = await connectTls(url, { transports: ['websocket'], ca });
    const inbox = collect(held);
    expect(await held.emitWithAck('join', 'renewal')).toMatchObject({ ok: true });
    expect(((await handshake(tlsPort, { ca })) as { serial: string }).serial).toBe('1001');

    const reloader = new NginxReloader({
      upstreamsFile,
      master: () => pidFromFile(nginx.runtime.pidFile),
    });
    const failures: unknown[] = [];
    const watch = new FileWatch(
      join(fleet.dir, 'tls.crt'),
      60_000,
      async () => {
        await reloader.reload();
      },
      (err) => failures.push(err),
    );
    try {
      expect(await watch.check()).toBe(false);
      issue(fleet.dir, '0x2002');
      expect(await watch.check()).toBe(true);
      expect(failures).toEqual([]);
      expect(((await handshake(tlsPort, { ca })) as { serial: string }).serial).toBe('2002');
    } finally {
      watch.stop();
    }
    // The WebSocket opened before the reload still delivers.
    const fresh = await connectTls(url, { transports: ['websocket'], ca });
    expect(await fresh.emitWithAck('publish', { room: 'renewal', data: 'after' })).toEqual({
      ok: true,
    });
    await until('the held WebSocket to receive', () => inbox.length === 1);
    expect(held.connected).toBe(true);
  });
});
