import type { RealtimeCluster } from '../api/realtimecluster.js';
import {
  GATEWAY_HEALTH_PORT,
  GATEWAY_LIVENESS_PATH,
  GATEWAY_PORT,
  GATEWAY_READINESS_PATH,
} from './ports.js';
import {
  connectionLimitLines,
  handshakeLimitLines,
  LIMITED_LOCATION,
  limitedLocation,
  limitHttpLines,
  limitsActive,
} from './nginx-limits.js';
import { redirectServer, tlsServerLines, type NginxTls } from './nginx-tls.js';
import {
  GATEWAY_STATUS_PATH,
  GATEWAY_STATUS_PORT,
  GATEWAY_SYNC_LOG_PORT,
  GATEWAY_TLS_PORT,
} from './ports.js';
import { sessionTag } from '../../server-image/src/session-tag.js';
import type { Endpoint } from './types.js';

export type Balance = RealtimeCluster['spec']['gateway']['balance'];

/** The kernel caps a listen backlog at net.core.somaxconn, so this only removes nginx's own cap. */
const LISTEN_BACKLOG = 65535;

/** Where this nginx runs: the pod, or a test's temp directory. Only these differ between them. */
export interface NginxRuntime {
  listenPort: number;
  pidFile: string;
  errorLog: string;
  // 'off' is spelled out because it is a sentinel, not a path.
  // eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents
  accessLog: string | 'off';
  tempDir: string;
  workerProcesses: number | 'auto';
  /** Only meaningful when the master runs as root; the pod runs nginx as non-root and omits it. */
  runAsUser?: string;
  /**
   * Port of a separate plain-HTTP listener for the kubelet's probes; omitted = no such listener
   * (local runs and tests that only proxy).
   */
  healthPort?: number;
  /**
   * One listening socket per worker (`reuseport`): without it one worker accepts nearly every
   * connection and runs out of worker_connections while the others idle.
   */
  reusePort?: boolean;
  /**
   * Where the upstream block lives when something other than this conf keeps it current (the
   * gateway pod's sync sidecar, or `up`): nginx.conf then only includes it. Omitted = inline.
   */
  upstreamsFile?: string;
  /**
   * Serve the gateway over HTTPS (spec.gateway.tls): the Socket.IO server block listens on
   * `tls.listenPort`, and `listenPort` only redirects (or is not opened at all).
   */
  tls?: NginxTls;
  /**
   * A stub_status listener bound to 127.0.0.1 for the exporter sidecar in the same pod; omitted
   * = none. Loopback only, so neither the Service nor other pods can reach it.
   */
  statusPort?: number;
  /**
   * UDP port on 127.0.0.1 where the gateway sync sidecar listens for nginx's emerg-level errors
   * (syslog): when nginx refuses a configuration at a reload, that is how the sidecar learns
   * why. Omitted = none.
   */
  errorLogPort?: number;
}

/** Mount directory of the rendered conf in the gateway pod (a ConfigMap volume, no subPath). */
export const NGINX_CONF_DIR = '/etc/socketfleet/nginx';
export const NGINX_CONF_FILE = 'nginx.conf';
export const NGINX_TMP_DIR = '/tmp/nginx';
/** Written by the sync sidecar into the pod's shared emptyDir; nginx.conf includes it. */
export const NGINX_UPSTREAMS_FILE = `${NGINX_TMP_DIR}/upstreams.conf`;
/** Mount directory of the spec.gateway.tls Secret, in the nginx container only. */
export const NGINX_TLS_DIR = '/etc/socketfleet/tls';

export function kubernetesNginxRuntime(cluster: RealtimeCluster): NginxRuntime {
  const g = cluster.spec.gateway;
  const runtime: NginxRuntime = {
    listenPort: GATEWAY_PORT,
    pidFile: `${NGINX_TMP_DIR}/nginx.pid`,
    errorLog: 'stderr',
    // Reopening /dev/stdout as uid 101 works because the runtime (runc) hands the container
    // stdio owned by the container user.
    accessLog: '/dev/stdout',
    tempDir: NGINX_TMP_DIR,
    workerProcesses: 'auto',
    healthPort: GATEWAY_HEALTH_PORT,
    reusePort: true,
    upstreamsFile: NGINX_UPSTREAMS_FILE,
    errorLogPort: GATEWAY_SYNC_LOG_PORT,
  };
  if (g.tls !== undefined) {
    runtime.tls = {
      listenPort: GATEWAY_TLS_PORT,
      certFile: `${NGINX_TLS_DIR}/tls.crt`,
      keyFile: `${NGINX_TLS_DIR}/tls.key`,
      ...(g.tls.redirectHttp ? { redirectToPort: g.tls.port } : {}),
    };
  }
  if (g.exporter.enabled) runtime.statusPort = GATEWAY_STATUS_PORT;
  return runtime;
}

/**
 * Seconds nginx waits on an idle proxied connection. Socket.IO sends a ping every pingInterval
 * and waits pingTimeout for the answer, so a healthy connection is never silent longer than
 * their sum; anything shorter would cut healthy clients.
 */
export function proxyTimeoutSeconds(cluster: RealtimeCluster): number {
  const s = cluster.spec.socketio;
  return Math.ceil((s.pingIntervalMs + s.pingTimeoutMs) / 1000) + 15;
}

/** Each proxied connection holds two descriptors (client and upstream), plus logs and listeners. */
export function nginxNofile(cluster: RealtimeCluster): number {
  return cluster.spec.gateway.workerConnections * 2 + 1024;
}

function ipKey(ip: string): string {
  if (ip.includes(':')) return `6:${ip}`;
  return `4:${ip
    .split('.')
    .map((o) => o.padStart(3, '0'))
    .join('.')}`;
}

/**
 * ip_hash maps by position, so a stable order keeps clients on their pod across re-renders. An
 * address listed twice counts once, and as serving if any entry is serving.
 */
export function sortEndpoints(upstreams: readonly Endpoint[]): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  for (const e of upstreams) {
    const key = `${e.ip}|${e.port}`;
    const seen = byKey.get(key);
    if (seen === undefined || (seen.down === true && e.down !== true)) byKey.set(key, e);
  }
  const out = [...byKey.values()];
  return out.sort((a, b) => {
    const ka = ipKey(a.ip);
    const kb = ipKey(b.ip);
    return ka < kb ? -1 : ka > kb ? 1 : a.port - b.port;
  });
}

function hostPort(e: Endpoint): string {
  return e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

function balanceDirective(balance: Balance): string {
  switch (balance) {
    case 'ip-hash':
      return 'ip_hash;';
    case 'consistent-hash':
      return 'hash $remote_addr consistent;';
    case 'room-affinity':
      return 'hash $socketfleet_affinity_key consistent;';
  }
}

/**
 * The upstream block alone: what changes when servers come and go. The operator renders it into
 * nginx.conf (or the file nginx.conf includes), and the gateway's sync sidecar and `up` render it
 * with this same function whenever the ready endpoints change.
 *
 * A server that is leaving (`down`) matters only to ip_hash, which picks a server by its
 * position in this list: it stays listed as `down` so that every other client keeps its server,
 * as nginx's documentation advises. The consistent hashes place each server on the ring by its
 * own address, so a leaving server is simply left out and only its own clients move.
 */
export function renderUpstreamBlock(balance: Balance, upstreams: readonly Endpoint[]): string {
  const listed = sortEndpoints(upstreams).filter((e) => balance === 'ip-hash' || e.down !== true);
  const lines = [
    'upstream socketfleet_servers {',
    `    ${balanceDirective(balance)}`,
    // Shared by the workers: a server one worker found dead is skipped by all of them.
    '    zone socketfleet_servers 256k;',
  ];
  for (const e of listed) {
    lines.push(
      e.down === true
        ? `    server ${hostPort(e)} down;`
        : `    server ${hostPort(e)} max_fails=3 fail_timeout=10s;`,
    );
  }
  if (!listed.some((e) => e.down !== true)) {
    // nginx needs one server per block; with none serving, the handshake location answers 503.
    lines.push('    server 127.0.0.1:1 down;');
  }
  // Idle upstream connections close before Node's 5 s keepAliveTimeout can close them under a
  // request nginx is just sending, which would fail that request (a session's is never retried).
  lines.push('    keepalive 64;', '    keepalive_timeout 4s;', '}', '');
  lines.push(...sessionRoutes(upstreams));
  return lines.join('\n');
}

/** Resolves to the upstream of the server a request's session lives on (see sessionRoutes). */
export const SESSION_UPSTREAM_VAR = '$socketfleet_session_upstream';

/**
 * A request of an existing session goes to the server whose tag starts its session id
 * (server-image/src/session-tag.ts), one upstream per server that still exists, leaving ones
 * included: the hash ring above changes whenever a server joins or leaves, and a long-polling
 * session whose next request is hashed elsewhere ends with "Session ID unknown" while its own
 * server is still up (draining, or no longer first on the ring). An id without a known tag
 * (a server started without its address) falls back to the hash.
 */
function sessionRoutes(upstreams: readonly Endpoint[]): string[] {
  const byTag = new Map<string, Endpoint>();
  for (const e of sortEndpoints(upstreams)) {
    const tag = sessionTag(e.ip, e.port);
    if (!byTag.has(tag)) byTag.set(tag, e);
  }
  const lines = [`map $arg_sid ${SESSION_UPSTREAM_VAR} {`, '    default socketfleet_servers;'];
  for (const tag of byTag.keys()) lines.push(`    "~^${tag}" socketfleet_session_${tag};`);
  lines.push('}', '');
  for (const [tag, e] of byTag) {
    lines.push(
      `upstream socketfleet_session_${tag} {`,
      // No failure accounting: no other server could take the session anyway.
      `    server ${hostPort(e)} max_fails=0;`,
      '    keepalive 16;',
      '    keepalive_timeout 4s;',
      '}',
      '',
    );
  }
  return lines;
}

function realIpLines(cluster: RealtimeCluster): string[] {
  const g = cluster.spec.gateway;
  const lines: string[] = [];
  if (g.proxyProtocol) {
    // Every connection on a proxy_protocol listener carries the header, so with no list given
    // the header itself is the only source of the client address.
    const trusted = g.trustedProxies.length > 0 ? g.trustedProxies : ['0.0.0.0/0', '::/0'];
    for (const cidr of trusted) lines.push(`set_real_ip_from ${cidr};`);
    lines.push('real_ip_header proxy_protocol;');
  } else if (g.trustedProxies.length > 0) {
    for (const cidr of g.trustedProxies) lines.push(`set_real_ip_from ${cidr};`);
    lines.push('real_ip_header X-Forwarded-For;', 'real_ip_recursive on;');
  }
  return lines;
}

/**
 * Answered by the nginx workers themselves, so a probe proves they still run their event loop
 * without touching an upstream. Its own listener because the kubelet cannot send the PROXY
 * protocol header that the gateway port may require, and so the Service never exposes it.
 */
function healthServer(port: number): string[] {
  const ok = ['access_log off;', 'default_type text/plain;', "return 200 'ok\\n';"];
  return [
    'server {',
    `    listen ${port};`,
    '    server_name _;',
    '',
    `    location = ${GATEWAY_LIVENESS_PATH} {`,
    ...indent(ok, 2),
    '    }',
    `    location = ${GATEWAY_READINESS_PATH} {`,
    ...indent(ok, 2),
    '    }',
    '    location / {',
    '        access_log off;',
    '        return 404;',
    '    }',
    '}',
  ];
}

/** nginx's own counters for the exporter sidecar: loopback only, nothing else answered. */
function statusServer(port: number): string[] {
  return [
    'server {',
    `    listen 127.0.0.1:${port};`,
    '    server_name _;',
    '    access_log off;',
    `    location = ${GATEWAY_STATUS_PATH} {`,
    '        stub_status;',
    '    }',
    '    location / {',
    '        return 404;',
    '    }',
    '}',
  ];
}

function indent(lines: string[], depth: number): string[] {
  const pad = '    '.repeat(depth);
  return lines.map((l) => (l === '' ? '' : pad + l));
}

/** Retries of a handshake on other servers, and the time they may take together. */
const HANDSHAKE_TRIES = 3;
const HANDSHAKE_RETRY_SECONDS = 10;

/**
 * The whole nginx.conf of the gateway. Requests are split in two:
 *
 * - A handshake (no `sid` in the query) has no session yet, so nginx may try it on another
 *   server when the first one cannot take it: connection refused or reset (a pod that died or
 *   is gone), a timeout, 502/503, or the 403 a draining server answers. Handshakes are GETs,
 *   so nginx's refusal to retry non-idempotent requests never applies to them.
 * - A request with a `sid` belongs to the session on one server. Sending it elsewhere would
 *   only earn a "Session ID unknown" error, so it is never retried; the client reconnects.
 *
 * With no serving upstream it still renders a valid config whose handshakes get 503 with
 * Retry-After, so a reload never fails just because every pod is rolling.
 */
export function renderNginxConf(
  cluster: RealtimeCluster,
  upstreams: readonly Endpoint[],
  runtime: NginxRuntime,
): string {
  const g = cluster.spec.gateway;
  const s = cluster.spec.socketio;
  const timeout = proxyTimeoutSeconds(cluster);
  const tmp = runtime.tempDir;
  const bodyLimit = s.maxPayloadBytes + 65536;
  // nginx's default backlog is 511; ask for the most and let net.core.somaxconn decide, so a
  // reconnect storm after a deploy is queued instead of dropped.
  const listenOn = (port: number, ssl: boolean): string =>
    `listen ${port}${ssl ? ' ssl' : ''} backlog=${LISTEN_BACKLOG}${runtime.reusePort ? ' reuseport' : ''}${g.proxyProtocol ? ' proxy_protocol' : ''};`;
  const tls = runtime.tls;
  const listen = tls ? listenOn(tls.listenPort, true) : listenOn(runtime.listenPort, false);
  const limited = limitsActive(cluster);

  const top: string[] = [
    `# Rendered by socketfleet for RealtimeCluster ${cluster.metadata.name}; do not edit.`,
  ];
  if (runtime.runAsUser) top.push(`user ${runtime.runAsUser};`);
  top.push(
    `worker_processes ${runtime.workerProcesses};`,
    `worker_rlimit_nofile ${nginxNofile(cluster)};`,
    // After a reload the old workers keep their WebSockets until these close or this runs out;
    // then nginx closes what is left and those clients reconnect (to the same server, since
    // their hash did not change).
    `worker_shutdown_timeout ${g.workerShutdownTimeoutSeconds}s;`,
    `pid ${runtime.pidFile};`,
    `error_log ${runtime.errorLog} warn;`,
  );
  if (runtime.errorLogPort !== undefined) {
    // A second log, emerg only: a refused reload is logged by the master in the old
    // configuration's logs, and this one reaches the sidecar in the other container.
    top.push(
      `error_log syslog:server=127.0.0.1:${runtime.errorLogPort},nohostname,tag=nginx emerg;`,
    );
  }
  top.push(
    '',
    'events {',
    `    worker_connections ${g.workerConnections};`,
    '    multi_accept on;',
    '}',
    '',
  );

  const http: string[] = [
    `client_body_temp_path ${tmp}/client_body;`,
    `proxy_temp_path ${tmp}/proxy;`,
    `fastcgi_temp_path ${tmp}/fastcgi;`,
    `uwsgi_temp_path ${tmp}/uwsgi;`,
    `scgi_temp_path ${tmp}/scgi;`,
    '',
    'server_tokens off;',
    'sendfile on;',
    'tcp_nodelay on;',
    // No keep-alive towards clients: a long-polling client sends its next request the moment a
    // response ends, and when that lands on a connection an old worker is closing at a reload,
    // Node's socket.io-client never saw an answer or an error and waited for its 45 s ping
    // timeout (35-66 of 600 polling clients per reload burst at 3000 clients; 5 of 300 over 6
    // reloads, 0 with this, in a reload experiment). WebSockets are unaffected (an upgraded
    // connection is a tunnel); a poll costs one TCP handshake instead.
    'keepalive_timeout 0;',
    `client_max_body_size ${bodyLimit};`,
    ...limitHttpLines(cluster),
    '',
    'log_format socketfleet escape=json',
    `    '{"time":"$time_iso8601","client":"$remote_addr","request":"$request",'`,
    `    '"status":$status,"upstream":"$upstream_addr","upstream_status":"$upstream_status",'`,
    `    '"duration":$request_time}';`,
    runtime.accessLog === 'off'
      ? 'access_log off;'
      : `access_log ${runtime.accessLog} socketfleet;`,
    '',
  ];
  const realIp = realIpLines(cluster);
  if (realIp.length > 0) http.push(...realIp, '');
  http.push(
    '# Keep-alive to the upstream for polling; Upgrade only when the client asks for it.',
    'map $http_upgrade $connection_upgrade {',
    '    default upgrade;',
    "    ''      '';",
    '}',
    '',
  );
  if (g.balance === 'room-affinity') {
    http.push(
      `# Clients of one room meet on one pod; clients without ?${g.roomKey}= hash by address.`,
      `map $arg_${g.roomKey} $socketfleet_affinity_key {`,
      "    ''      $remote_addr;",
      `    default $arg_${g.roomKey};`,
      '}',
      '',
    );
  }
  if (runtime.upstreamsFile !== undefined) {
    http.push(
      '# Kept current by the gateway sync sidecar.',
      `include ${runtime.upstreamsFile};`,
      '',
    );
  } else {
    http.push(...renderUpstreamBlock(g.balance, upstreams).split('\n'));
  }

  const proxy: string[] = [
    'proxy_http_version 1.1;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Connection $connection_upgrade;',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Real-IP $remote_addr;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_connect_timeout 3s;',
    `proxy_read_timeout ${timeout}s;`,
    `proxy_send_timeout ${timeout}s;`,
    '# Long-polling responses must reach the client as soon as the server writes them.',
    'proxy_buffering off;',
    'proxy_request_buffering off;',
  ];

  const serverTop = [`    ${listen}`, '    server_name _;'];
  if (tls) serverTop.push(...indent(tlsServerLines(tls), 1));
  if (limited) {
    serverTop.push(
      '',
      '    # Per client address (spec.gateway.limits); refusals answer 429 with Retry-After.',
      ...indent(connectionLimitLines(cluster), 1),
      `    error_page 429 = ${LIMITED_LOCATION};`,
    );
  }
  http.push(
    'server {',
    ...serverTop,
    '',
    '    # A request of an existing session goes to its server and nowhere else.',
    '    error_page 418 = @session;',
    '    if ($arg_sid != "") {',
    '        return 418;',
    '    }',
    '',
    '    location / {',
    ...indent(
      [
        '# A new session: another server may take it when the first cannot.',
        'proxy_next_upstream error timeout http_502 http_503 http_403;',
        `proxy_next_upstream_tries ${HANDSHAKE_TRIES};`,
        `proxy_next_upstream_timeout ${HANDSHAKE_RETRY_SECONDS}s;`,
        '# No server left to try (or none is ready): tell the client to come back.',
        'error_page 502 504 = @unavailable;',
        ...(limited
          ? [
              '# Only handshakes count here: a request with a sid went to @session above.',
              ...handshakeLimitLines(cluster),
              `error_page 429 = ${LIMITED_LOCATION};`,
            ]
          : []),
        'proxy_pass http://socketfleet_servers;',
        ...proxy,
      ],
      2,
    ),
    '    }',
    '',
    '    location @session {',
    ...indent(
      ['proxy_next_upstream off;', `proxy_pass http://${SESSION_UPSTREAM_VAR};`, ...proxy],
      2,
    ),
    '    }',
    '',
    '    location @unavailable {',
    ...indent(
      [
        'default_type text/plain;',
        'add_header Retry-After 5 always;',
        "return 503 'no ready Socket.IO server\\n';",
      ],
      2,
    ),
    '    }',
    ...(limited ? ['', ...indent(limitedLocation(cluster), 1)] : []),
    '}',
  );
  if (tls?.redirectToPort !== undefined) {
    http.push('', ...redirectServer(listenOn(runtime.listenPort, false), tls.redirectToPort));
  }
  if (runtime.healthPort !== undefined) http.push('', ...healthServer(runtime.healthPort));
  if (runtime.statusPort !== undefined) http.push('', ...statusServer(runtime.statusPort));

  return [...top, 'http {', ...indent(http, 1), '}', ''].join('\n');
}
