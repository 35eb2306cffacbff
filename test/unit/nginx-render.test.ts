import { describe, expect, it } from 'vitest';
import {
  kubernetesNginxRuntime,
  nginxNofile,
  proxyTimeoutSeconds,
  renderNginxConf,
  renderUpstreamBlock,
  sortEndpoints,
  type NginxRuntime,
} from '../../operator/desired/nginx.js';
import type { Endpoint } from '../../operator/desired/types.js';
import { clusterFrom, manifest } from './helpers.js';
import { sessionTag } from '../../server-image/src/session-tag.js';

const runtime: NginxRuntime = {
  listenPort: 18080,
  pidFile: '/tmp/x/nginx.pid',
  errorLog: '/tmp/x/error.log',
  accessLog: 'off',
  tempDir: '/tmp/x',
  workerProcesses: 1,
};
const two: Endpoint[] = [
  { ip: '10.0.0.12', port: 3000 },
  { ip: '10.0.0.9', port: 3000 },
];

function conf(spec: Record<string, unknown> = {}, upstreams = two, rt = runtime): string {
  return renderNginxConf(clusterFrom(manifest(spec)), upstreams, rt);
}

function upstreamBlock(text: string): string {
  const m = /upstream socketfleet_servers \{\n([\s\S]*?)\n\s*\}/.exec(text);
  if (!m) throw new Error('no upstream block');
  return m[1]!;
}

describe('renderNginxConf', () => {
  it('balances on the full address with a consistent hash by default', () => {
    const up = upstreamBlock(conf());
    expect(up).toContain('hash $remote_addr consistent;');
    expect(up).not.toContain('ip_hash');
  });

  it('balances with ip_hash on request', () => {
    const up = upstreamBlock(conf({ gateway: { balance: 'ip-hash' } }));
    expect(up).toContain('ip_hash;');
    expect(up).not.toContain('hash $');
  });

  it('keeps a leaving server listed as down with ip_hash and leaves it out of a consistent hash', () => {
    const leaving = [two[0]!, { ...two[1]!, down: true }];
    const ipHash = upstreamBlock(conf({ gateway: { balance: 'ip-hash' } }, leaving));
    expect(ipHash).toContain('server 10.0.0.9:3000 down;');
    expect(ipHash).toContain('server 10.0.0.12:3000 max_fails=3 fail_timeout=10s;');
    // Same positions as before the server left, so ip_hash sends every other client where it did.
    expect(renderUpstreamBlock('ip-hash', leaving).split('server ').length).toBe(
      renderUpstreamBlock('ip-hash', two).split('server ').length,
    );
    const ring = upstreamBlock(conf({}, leaving));
    expect(ring).not.toContain('10.0.0.9');
    expect(ring).toContain('server 10.0.0.12:3000 max_fails=3 fail_timeout=10s;');
    // The same address listed as leaving and as serving (a restarted pod) serves.
    expect(renderUpstreamBlock('ip-hash', [...leaving, two[1]!])).not.toContain(' down;\n    keep');
    expect(renderUpstreamBlock('ip-hash', [...leaving, two[1]!])).toContain(
      'server 10.0.0.9:3000 max_fails',
    );
  });

  it('retries only handshakes on another server, never a request of a session', () => {
    const text = conf();
    const handshake = /location \/ \{([\s\S]*?)\n {4}\}/.exec(text)![1]!;
    expect(handshake).toContain('proxy_next_upstream error timeout http_502 http_503 http_403;');
    expect(handshake).toContain('error_page 502 504 = @unavailable;');
    const session = /location @session \{([\s\S]*?)\n {4}\}/.exec(text)![1]!;
    expect(session).toContain('proxy_next_upstream off;');
    expect(session).toContain('proxy_pass http://$socketfleet_session_upstream;');
    expect(text).toMatch(/if \(\$arg_sid != ""\) \{\n\s*return 418;\n\s*\}/);
    expect(text).toContain('error_page 418 = @session;');
  });

  it('routes a session by the tag in its id to its server, leaving servers included', () => {
    const eps = [
      { ip: '10.0.0.9', port: 3000, down: true },
      { ip: '10.0.0.12', port: 3000 },
    ];
    for (const balance of ['consistent-hash', 'ip-hash', 'room-affinity'] as const) {
      const text = renderUpstreamBlock(balance, eps);
      const map = /map \$arg_sid \$socketfleet_session_upstream \{\n([\s\S]*?)\n\}/.exec(text)![1]!;
      expect(map.split('\n').map((l) => l.trim())).toEqual([
        'default socketfleet_servers;',
        `"~^${sessionTag('10.0.0.9', 3000)}" socketfleet_session_${sessionTag('10.0.0.9', 3000)};`,
        `"~^${sessionTag('10.0.0.12', 3000)}" socketfleet_session_${sessionTag('10.0.0.12', 3000)};`,
      ]);
      expect(text).toContain(
        `upstream socketfleet_session_${sessionTag('10.0.0.9', 3000)} {\n    server 10.0.0.9:3000 max_fails=0;`,
      );
    }
    // No server: every session falls back to the (placeholder) ring.
    expect(renderUpstreamBlock('consistent-hash', [])).toContain(
      'map $arg_sid $socketfleet_session_upstream {\n    default socketfleet_servers;\n}',
    );
  });

  it('tags a server address with 8 hex characters, the same in the server and the gateway', () => {
    expect(sessionTag('10.0.0.9', 3000)).toMatch(/^[0-9a-f]{8}$/);
    expect(sessionTag('10.0.0.9', 3000)).toBe(sessionTag('10.0.0.9', 3000));
    expect(sessionTag('10.0.0.9', 3000)).not.toBe(sessionTag('10.0.0.9', 3001));
    // FNV-1a 32 of "a:1" (computed independently): servers and gateways of one release agree.
    expect(sessionTag('a', 1)).toBe('dbbd3e69');
  });

  it('bounds old workers after a reload', () => {
    expect(conf()).toContain('worker_shutdown_timeout 600s;');
    expect(conf({ gateway: { workerShutdownTimeoutSeconds: 60 } })).toContain(
      'worker_shutdown_timeout 60s;',
    );
  });

  it('includes the upstream block from a file when the runtime names one', () => {
    const text = conf({}, [], { ...runtime, upstreamsFile: '/run/upstreams.conf' });
    expect(text).toContain('include /run/upstreams.conf;');
    expect(text).not.toContain('upstream socketfleet_servers');
  });

  it('hashes the room key with room-affinity and falls back to the client address', () => {
    const text = conf({ gateway: { balance: 'room-affinity', roomKey: 'channel' } });
    expect(upstreamBlock(text)).toContain('hash $socketfleet_affinity_key consistent;');
    expect(text).toMatch(
      /map \$arg_channel \$socketfleet_affinity_key \{\n\s*''\s+\$remote_addr;\n\s*default \$arg_channel;\n\s*\}/,
    );
  });

  it('lists upstreams in a stable numeric order without duplicates', () => {
    const a = conf({}, [...two, { ip: '10.0.0.9', port: 3000 }]);
    const b = conf({}, [...two].reverse());
    expect(a).toBe(b);
    const servers = upstreamBlock(a)
      .split('\n')
      .filter((l) => l.trim().startsWith('server '));
    expect(servers.map((l) => l.trim().split(' ')[1])).toEqual(['10.0.0.9:3000', '10.0.0.12:3000']);
    expect(
      sortEndpoints([
        { ip: 'fd00::2', port: 1 },
        { ip: '10.1.0.1', port: 1 },
      ])[0]!.ip,
    ).toBe('10.1.0.1');
    expect(conf({}, [{ ip: 'fd00::1', port: 3000 }])).toContain('server [fd00::1]:3000');
  });

  it('answers 503 and keeps a placeholder upstream when no server is ready', () => {
    const text = conf({}, []);
    const up = upstreamBlock(text);
    expect(up).toContain('hash $remote_addr consistent;');
    expect(up).toContain('server 127.0.0.1:1 down;');
    expect(up.match(/^\s*server /gm)).toHaveLength(1);
    expect(text).toContain("return 503 'no ready Socket.IO server\\n';");
    // Only leaving servers: still nothing serves.
    const leaving = upstreamBlock(
      conf({ gateway: { balance: 'ip-hash' } }, [{ ...two[0]!, down: true }]),
    );
    expect(leaving).toContain('server 127.0.0.1:1 down;');
  });

  it('passes WebSocket upgrades and does not buffer long-polling', () => {
    const text = conf();
    expect(text).toContain('proxy_http_version 1.1;');
    expect(text).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(text).toContain('proxy_set_header Connection $connection_upgrade;');
    expect(text).toContain('proxy_buffering off;');
    expect(text).toContain('proxy_request_buffering off;');
    expect(text).toContain('proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;');
  });

  it('keeps proxy timeouts above pingInterval + pingTimeout', () => {
    const spec = { socketio: { pingIntervalMs: 60000, pingTimeoutMs: 30000 } };
    const seconds = proxyTimeoutSeconds(clusterFrom(manifest(spec)));
    expect(seconds).toBeGreaterThan(90);
    expect(conf(spec)).toContain(`proxy_read_timeout ${seconds}s;`);
    expect(conf(spec)).toContain(`proxy_send_timeout ${seconds}s;`);
    expect(conf()).toContain('proxy_read_timeout 60s;');
  });

  it('sizes worker_connections and worker_rlimit_nofile together', () => {
    const c = clusterFrom(manifest({ gateway: { workerConnections: 4096 } }));
    expect(nginxNofile(c)).toBeGreaterThan(2 * 4096);
    const text = renderNginxConf(c, two, runtime);
    expect(text).toContain('worker_connections 4096;');
    expect(text).toContain(`worker_rlimit_nofile ${nginxNofile(c)};`);
  });

  it('reads the client address from the PROXY protocol of trusted proxies', () => {
    const text = conf({ gateway: { proxyProtocol: true, trustedProxies: ['10.0.0.0/8'] } });
    expect(text).toContain('listen 18080 backlog=65535 proxy_protocol;');
    expect(text).toContain('set_real_ip_from 10.0.0.0/8;');
    expect(text).toContain('real_ip_header proxy_protocol;');
    expect(text).not.toContain('set_real_ip_from 0.0.0.0/0;');
  });

  it('trusts the PROXY header from anywhere only when no proxy list is given', () => {
    const text = conf({ gateway: { proxyProtocol: true } });
    expect(text).toContain('set_real_ip_from 0.0.0.0/0;');
    expect(text).toContain('set_real_ip_from ::/0;');
  });

  it('takes X-Forwarded-For only from trusted proxies without PROXY protocol', () => {
    const text = conf({ gateway: { trustedProxies: ['192.168.0.0/16'] } });
    expect(text).toContain('listen 18080 backlog=65535;');
    expect(text).toContain('set_real_ip_from 192.168.0.0/16;');
    expect(text).toContain('real_ip_header X-Forwarded-For;');
    expect(conf()).not.toContain('real_ip_header');
  });

  it('writes the runtime paths and the optional user', () => {
    const text = conf({}, two, { ...runtime, accessLog: '/var/log/a.log', runAsUser: 'nobody' });
    expect(text).toContain('pid /tmp/x/nginx.pid;');
    expect(text).toContain('error_log /tmp/x/error.log warn;');
    expect(text).toContain('access_log /var/log/a.log socketfleet;');
    expect(text).toContain('proxy_temp_path /tmp/x/proxy;');
    expect(text).toContain('user nobody;');
    expect(conf()).toContain('access_log off;');
    expect(conf()).not.toContain('user ');
  });

  it('lets polling bodies up to maxPayloadBytes through', () => {
    expect(conf({ socketio: { maxPayloadBytes: 1000000 } })).toContain(
      `client_max_body_size ${1000000 + 65536};`,
    );
  });

  it('runs unprivileged in Kubernetes', () => {
    const rt = kubernetesNginxRuntime(clusterFrom(manifest()));
    expect(rt.listenPort).toBe(8080);
    expect(rt.runAsUser).toBeUndefined();
    expect(rt.pidFile.startsWith(rt.tempDir)).toBe(true);
    expect(rt.healthPort).toBe(8081);
  });

  it('gives every worker its own listening socket in Kubernetes, and backlog up to somaxconn', () => {
    const rt = kubernetesNginxRuntime(clusterFrom(manifest()));
    expect(rt.reusePort).toBe(true);
    expect(conf({}, two, rt)).toContain('listen 8080 backlog=65535 reuseport;');
    expect(conf({ gateway: { proxyProtocol: true } }, two, rt)).toContain(
      'listen 8080 backlog=65535 reuseport proxy_protocol;',
    );
    expect(conf()).not.toContain('reuseport');
  });

  it('renders a probe listener only when the runtime asks for one', () => {
    expect(conf()).not.toContain('/healthz');
    const text = conf({ gateway: { proxyProtocol: true } }, two, { ...runtime, healthPort: 18081 });
    const health = /server \{\n\s*listen 18081;\n([\s\S]*?)\n {4}\}\n\}/.exec(text);
    expect(health, text).not.toBeNull();
    // The kubelet sends no PROXY header, so the probe listener must not expect one.
    expect(health![0]).not.toContain('proxy_protocol');
    expect(health![0]).not.toContain('proxy_pass');
    expect(health![1]).toMatch(/location = \/healthz \{\n\s*access_log off;/);
    expect(health![1]).toMatch(/location = \/readyz \{\n\s*access_log off;/);
  });
});
