import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceAddress } from '../../operator/bench/addresses.js';
import { crc32, KetamaRing } from '../../server-image/src/ketama.js';
import { renderUpstreamBlock } from '../../operator/desired/nginx.js';
import { endpointsFromSlices, type EndpointSliceLike } from '../../operator/desired/upstreams.js';
import { Fleet, type NginxProcess, type NginxRuntimeLike } from './support/fleet.js';

/**
 * The operator's copy of nginx's consistent-hash ring against real nginx on the upstream block
 * the gateway renders: for 600 client addresses, the server nginx picks is the one the ring
 * predicts, before and after a server joins, and the clients that would move are exactly the
 * ones the ring says. This is what rebalancing after a scale-up builds on. About 5 s.
 */
const CLIENTS = 600;

describe('KetamaRing matches nginx hash $remote_addr consistent', () => {
  const fleet = new Fleet('ketama');
  const backends: { server: http.Server; port: number }[] = [];
  let nginx: NginxProcess;
  let runtime: NginxRuntimeLike;

  const upstreams = (n: number): string =>
    renderUpstreamBlock(
      'consistent-hash',
      endpointsFromSlices(
        backends.slice(0, n).map((b): EndpointSliceLike => ({
          ports: [{ name: 'socketio', port: b.port }],
          endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
        })),
      ),
    );

  const conf = (n: number, rt: NginxRuntimeLike): string =>
    [
      'worker_processes 1;',
      `pid ${rt.pidFile};`,
      `error_log ${rt.errorLog} warn;`,
      ...(rt.runAsUser ? [`user ${rt.runAsUser};`] : []),
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${rt.tempDir}/body;`,
      `  proxy_temp_path ${rt.tempDir}/proxy;`,
      `  fastcgi_temp_path ${rt.tempDir}/fastcgi;`,
      `  uwsgi_temp_path ${rt.tempDir}/uwsgi;`,
      `  scgi_temp_path ${rt.tempDir}/scgi;`,
      upstreams(n),
      `  server { listen 127.0.0.1:${rt.listenPort}; location / { proxy_pass http://socketfleet_servers; } }`,
      '}',
      '',
    ].join('\n');

  /** Which backend answers each client address, through nginx. */
  async function observe(): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = await Promise.all(
        Array.from(
          { length: Math.min(50, CLIENTS - i) },
          (_, k) =>
            new Promise<string>((resolve, reject) => {
              const req = http.get(
                {
                  host: '127.0.0.1',
                  port: nginx.port,
                  path: '/',
                  localAddress: sourceAddress(i + k),
                  agent: false,
                },
                (res) => {
                  let body = '';
                  res.on('data', (c: Buffer) => (body += c.toString()));
                  res.on('end', () => resolve(body));
                },
              );
              req.on('error', reject);
            }),
        ),
      );
      out.push(...batch);
    }
    return out;
  }

  const ringOf = (n: number): KetamaRing =>
    new KetamaRing(backends.slice(0, n).map((b) => ({ server: `127.0.0.1:${b.port}` })));

  beforeAll(async () => {
    for (let i = 0; i < 5; i++) {
      const server = http.createServer((req, res) => {
        res.end(`127.0.0.1:${(server.address() as AddressInfo).port}`);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      backends.push({ server, port: (server.address() as AddressInfo).port });
    }
    nginx = await fleet.nginx((_port, rt) => {
      runtime = rt;
      return conf(4, rt);
    });
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll();
    for (const b of backends) b.server.close();
  });

  it('computes the standard CRC-32', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('predicts the server of every client, before and after a server joins', async () => {
    const four = ringOf(4);
    const seenFour = await observe();
    const predictedFour = seenFour.map((_, i) => four.owner(sourceAddress(i)));
    expect(seenFour).toEqual(predictedFour);

    await nginx.reload(conf(5, runtime));
    const five = ringOf(5);
    const seenFive = await observe();
    expect(seenFive).toEqual(seenFive.map((_, i) => five.owner(sourceAddress(i))));

    // The clients whose server changed all went to the new server, about 1/5 of them.
    const newcomer = `127.0.0.1:${backends[4]?.port ?? 0}`;
    const moved = seenFive.filter((s, i) => s !== seenFour[i]);
    expect(moved.every((s) => s === newcomer)).toBe(true);
    expect(moved.length).toBeGreaterThan(CLIENTS * 0.1);
    expect(moved.length).toBeLessThan(CLIENTS * 0.35);
    process.stdout.write(`ketama: ${moved.length}/${CLIENTS} clients map to the fifth server\n`);
  }, 60_000);
});
