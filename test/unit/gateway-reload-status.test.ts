// The gateway sync sidecar's record of refused reloads: nginx's message parsed from its syslog
// datagram or `nginx -t` output, the UDP listener on loopback, and the /metrics + /rejection
// pages the operator reads. nginx itself refusing a reload: test/dataplane/gateway-rejected.test.ts.
import dgram from 'node:dgram';
import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { scrapeGateway } from '../../operator/autoscale/scrape.js';
import { parseGatewaySyncFlags } from '../../operator/cli/gateway-sync.js';
import { emergMessage, NginxErrorListener } from '../../operator/gateway/nginx-errors.js';
import { ReloadStatus } from '../../operator/gateway/reload-status.js';

// As nginx 1.22 sent it, measured with `error_log syslog:server=127.0.0.1:P,nohostname,tag=nginx emerg`.
const DATAGRAM =
  '<184>Nov 30 01:52:44 nginx: 2026/11/30 01:52:44 [emerg] 25603#25603: invalid parameter "bogus" in /tmp/x/up.conf:1';

describe('emergMessage', () => {
  it("takes nginx's words from a syslog datagram and from nginx -t's stderr", () => {
    expect(emergMessage(DATAGRAM)).toBe('invalid parameter "bogus" in /tmp/x/up.conf:1');
    expect(
      emergMessage(
        'nginx: [emerg] host not found in set_real_ip_from "10.0.0.300/8" in /c/nginx.conf:3\nnginx: configuration file /c/nginx.conf test failed',
      ),
    ).toBe('host not found in set_real_ip_from "10.0.0.300/8" in /c/nginx.conf:3');
    expect(emergMessage('2026/11/30 01:52:44 [warn] 1#1: something else')).toBeUndefined();
    expect(emergMessage(`[emerg] 1#1: ${'x'.repeat(2000)}`)?.length).toBe(500);
  });
});

describe('NginxErrorListener', () => {
  it('keeps the last emerg datagram with the time it came, on loopback', async () => {
    const l = await NginxErrorListener.listen(0, () => 1000);
    const out = dgram.createSocket('udp4');
    try {
      out.send(
        '<190>Nov 30 01:52:44 nginx: 2026/11/30 [info] 1#1: not an error',
        l.port,
        '127.0.0.1',
      );
      out.send(DATAGRAM, l.port, '127.0.0.1');
      for (let i = 0; i < 100 && l.since(0) === undefined; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(l.since(1000)).toBe('invalid parameter "bogus" in /tmp/x/up.conf:1');
      // Heard before the reload in question: not its answer.
      expect(l.since(1001)).toBeUndefined();
    } finally {
      out.close();
      l.close();
    }
  });
});

describe('ReloadStatus', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
  });

  it('serves the gauge and nginx message while refused, and clears both on a good reload', async () => {
    let now = Date.parse('2026-11-30T02:00:00Z');
    const status = new ReloadStatus(() => now);
    server = await status.listen(0, '127.0.0.1');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const base = `http://127.0.0.1:${address.port}`;

    expect(await scrapeGateway(base)).toEqual({ configRejected: false, reloadFailures: 0 });
    status.rejected('invalid parameter "bogus" in /tmp/x/up.conf:1');
    now += 5000;
    status.rejected('invalid parameter "bogus" in /tmp/x/up.conf:1');
    expect(await scrapeGateway(base)).toEqual({
      configRejected: true,
      reloadFailures: 2,
      message: 'invalid parameter "bogus" in /tmp/x/up.conf:1',
    });
    const body = await (await fetch(`${base}/rejection`)).json();
    // The first refusal in a row dates the trouble.
    expect(body).toEqual({
      message: 'invalid parameter "bogus" in /tmp/x/up.conf:1',
      since: '2026-11-30T02:00:00.000Z',
      count: 2,
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    // The message never becomes a label.
    expect(metrics).not.toContain('bogus');
    expect(metrics).toContain('socketfleet_gateway_config_rejected 1');

    status.reloaded();
    expect(await scrapeGateway(base)).toEqual({ configRejected: false, reloadFailures: 2 });
    expect((await fetch(`${base}/rejection`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});

describe('gateway-sync flags', () => {
  const base = ['--service=s', '--balance=ip-hash', '--upstreams-file=/u', '--pid-file=/p'];
  it('takes the metrics and nginx log ports, and refuses a bad one naming the flag', () => {
    const flags = parseGatewaySyncFlags([...base, '--metrics-port=9114', '--nginx-log-port=5140']);
    expect(flags !== 'help' && [flags.metricsPort, flags.nginxLogPort]).toEqual([9114, 5140]);
    const none = parseGatewaySyncFlags(base);
    expect(none !== 'help' && [none.metricsPort, none.nginxLogPort]).toEqual([
      undefined,
      undefined,
    ]);
    expect(() => parseGatewaySyncFlags([...base, '--metrics-port=70000'])).toThrow(
      'gateway-sync: --metrics-port must be a port from 1 to 65535, got "70000".',
    );
  });
});
