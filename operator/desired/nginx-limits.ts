import type { RealtimeCluster } from '../api/realtimecluster.js';

/**
 * The gateway's per-address abuse limits (spec.gateway.limits) as nginx directives. Keyed on
 * $binary_remote_addr, which the realip module has already set to the real client address when
 * proxyProtocol or trustedProxies are configured.
 */

const CONN_ZONE = 'socketfleet_conn';
const HANDSHAKE_ZONE = 'socketfleet_handshakes';
/** About 256k addresses per zone (nginx: 16k 64-byte states per MiB); shared by the workers. */
const ZONE_SIZE = '16m';
export const LIMITED_LOCATION = '@limited';

type Limits = RealtimeCluster['spec']['gateway']['limits'];

/** nginx takes whole requests per second or per minute; fractions become per-minute rates. */
export function nginxRate(perSecond: number): string {
  if (Number.isInteger(perSecond)) return `${perSecond}r/s`;
  return `${Math.max(1, Math.round(perSecond * 60))}r/m`;
}

/** Seconds a refused client should wait: about one handshake's share of the rate. */
export function retryAfterSeconds(limits: Limits): number {
  const rate = limits.handshakesPerSecondPerAddress;
  return rate > 0 ? Math.min(60, Math.max(1, Math.ceil(1 / rate))) : 1;
}

/** http-level: the shared zones, the refusal status, and the header/body timeouts. */
export function limitHttpLines(cluster: RealtimeCluster): string[] {
  const l = cluster.spec.gateway.limits;
  const lines = [
    '# A slow or stalled client is closed instead of holding a connection (nginx default: 60 s).',
    `client_header_timeout ${l.clientHeaderTimeoutSeconds}s;`,
    `client_body_timeout ${l.clientBodyTimeoutSeconds}s;`,
  ];
  if (l.connectionsPerAddress > 0) {
    lines.push(
      // A long-polling session keeps one GET waiting and sends with short POSTs beside it;
      // counting only the GETs (and WebSockets, which are GETs) makes the cap about sessions,
      // and a session at the cap is never cut by refusing one of its sends.
      'map $request_method $socketfleet_conn_key {',
      "    POST    '';",
      '    default $binary_remote_addr;',
      '}',
      `limit_conn_zone $socketfleet_conn_key zone=${CONN_ZONE}:${ZONE_SIZE};`,
      'limit_conn_status 429;',
      'limit_conn_log_level warn;',
    );
  }
  if (l.handshakesPerSecondPerAddress > 0) {
    lines.push(
      `limit_req_zone $binary_remote_addr zone=${HANDSHAKE_ZONE}:${ZONE_SIZE} rate=${nginxRate(l.handshakesPerSecondPerAddress)};`,
      'limit_req_status 429;',
      'limit_req_log_level warn;',
    );
  }
  return lines;
}

/** server-level: every request of the client counts while it runs (a WebSocket for its life). */
export function connectionLimitLines(cluster: RealtimeCluster): string[] {
  const l = cluster.spec.gateway.limits;
  return l.connectionsPerAddress > 0 ? [`limit_conn ${CONN_ZONE} ${l.connectionsPerAddress};`] : [];
}

/**
 * In the handshake location only: a request with a sid (a poll, a send, the upgrade of an
 * established session) is routed to @session before any location is chosen, so it never
 * reaches this limit.
 */
export function handshakeLimitLines(cluster: RealtimeCluster): string[] {
  const l = cluster.spec.gateway.limits;
  if (l.handshakesPerSecondPerAddress <= 0) return [];
  return [`limit_req zone=${HANDSHAKE_ZONE} burst=${l.handshakeBurst} nodelay;`];
}

export function limitsActive(cluster: RealtimeCluster): boolean {
  const l = cluster.spec.gateway.limits;
  return l.connectionsPerAddress > 0 || l.handshakesPerSecondPerAddress > 0;
}

/** Where a refused request ends: 429 with Retry-After, so clients back off instead of hammering. */
export function limitedLocation(cluster: RealtimeCluster): string[] {
  return [
    `location ${LIMITED_LOCATION} {`,
    '    default_type text/plain;',
    `    add_header Retry-After ${retryAfterSeconds(cluster.spec.gateway.limits)} always;`,
    "    return 429 'too many connections or handshakes from this address\\n';",
    '}',
  ];
}
