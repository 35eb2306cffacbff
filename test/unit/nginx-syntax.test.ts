import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BALANCE_MODES } from '../../operator/api/realtimecluster.js';
import { renderNginxConf } from '../../operator/desired/nginx.js';
import { clusterFrom, manifest } from './helpers.js';
import { nginxDir, nginxTest, type NginxDir } from './nginx-process.js';

const dirs: NginxDir[] = [];
// nginx -t loads the certificate, so the TLS cases need a real one.
const certDir = mkdtempSync(join(tmpdir(), 'socketfleet-nginx-tls-'));
const cert = spawnSync(
  'openssl',
  ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
    '-keyout',
    'tls.key',
    '-out',
    'tls.crt',
    '-days',
    '1',
    '-subj',
    '/CN=gateway',
  ]),
  { cwd: certDir, encoding: 'utf8' },
);
if (cert.status !== 0) throw new Error(`openssl failed: ${cert.stderr}`);
afterAll(() => {
  for (const d of dirs) d.cleanup();
  rmSync(certDir, { recursive: true, force: true });
});

const upstreamSets = {
  none: [],
  one: [{ ip: '10.0.0.5', port: 3000 }],
  mixed: [
    { ip: '10.0.0.5', port: 3000 },
    { ip: '10.0.1.7', port: 3000 },
    { ip: 'fd00::7', port: 3000 },
  ],
};
const gatewayVariants: Record<string, Record<string, unknown>> = {
  plain: {},
  'proxy-protocol': { proxyProtocol: true, trustedProxies: ['10.0.0.0/8', 'fd00::/8'] },
  'x-forwarded-for': { trustedProxies: ['192.168.0.0/16'] },
  'limits-off': {
    limits: { connectionsPerAddress: 0, handshakesPerSecondPerAddress: 0 },
    exporter: { enabled: true },
  },
  'per-minute-rate': { limits: { handshakesPerSecondPerAddress: 0.25, connectionsPerAddress: 0 } },
  'tls-proxy-protocol': {
    tls: { secretName: 'tls' },
    proxyProtocol: true,
    trustedProxies: ['10.0.0.0/8'],
  },
  'tls-only': { tls: { secretName: 'tls', redirectHttp: false } },
};

const cases = BALANCE_MODES.flatMap((balance) =>
  Object.keys(upstreamSets).flatMap((set) =>
    Object.keys(gatewayVariants).map((variant) => [balance, set, variant] as const),
  ),
);

describe("Debian's nginx accepts the rendered nginx.conf", () => {
  it.each(cases)('%s with %s upstreams (%s)', (balance, set, variant) => {
    const d = nginxDir(18080);
    dirs.push(d);
    const cluster = clusterFrom(manifest({ gateway: { balance, ...gatewayVariants[variant] } }));
    writeFileSync(
      d.confPath,
      renderNginxConf(cluster, upstreamSets[set as keyof typeof upstreamSets], {
        ...d.runtime,
        healthPort: 18081,
        statusPort: 18082,
        ...(variant.startsWith('tls')
          ? {
              tls: {
                listenPort: 18443,
                certFile: join(certDir, 'tls.crt'),
                keyFile: join(certDir, 'tls.key'),
                ...(variant === 'tls-only' ? {} : { redirectToPort: 443 }),
              },
            }
          : {}),
      }),
    );
    const r = nginxTest(d.confPath, d.dir);
    expect(r.output).toContain('test is successful');
    expect(r.status).toBe(0);
  });

  it('rejects a broken conf, so the check above can fail', () => {
    const d = nginxDir(18080);
    dirs.push(d);
    writeFileSync(d.confPath, 'events {}\nhttp { upstream x { ip_hash } }\n');
    expect(nginxTest(d.confPath, d.dir).status).not.toBe(0);
  });
});
