/**
 * Client TLS at the gateway (spec.gateway.tls). Protocols and ciphers follow the usual
 * "intermediate" compatibility profile: TLS 1.2 and 1.3, ECDHE key exchange and AEAD ciphers
 * only, so every session is forward-secret; browsers and Node clients of the last decade
 * connect. HTTP/2 stays off on purpose: a WebSocket over HTTP/2 needs RFC 8441, which nginx
 * does not proxy, and Socket.IO's upgrade relies on HTTP/1.1.
 */

export interface NginxTls {
  /** Port of the HTTPS listener. */
  listenPort: number;
  certFile: string;
  keyFile: string;
  /**
   * Port the plain listener redirects to (the Service's HTTPS port, as clients see it); omitted
   * = no plain listener.
   */
  redirectToPort?: number;
}

export const TLS_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export function tlsServerLines(tls: NginxTls): string[] {
  return [
    `ssl_certificate ${tls.certFile};`,
    `ssl_certificate_key ${tls.keyFile};`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    `ssl_ciphers ${TLS_CIPHERS};`,
    // With only strong ciphers offered, the client's order is as good and favours its hardware.
    'ssl_prefer_server_ciphers off;',
    'ssl_session_cache shared:socketfleet_tls:10m;',
    'ssl_session_timeout 1d;',
    // Tickets would need a rotated key shared by the replicas; the session cache needs neither.
    'ssl_session_tickets off;',
  ];
}

/**
 * The plain listener when TLS is on: every request gets 308 to the same URL over https, which
 * keeps the method and body. No Socket.IO traffic is proxied in clear text.
 */
export function redirectServer(listen: string, httpsPort: number): string[] {
  const port = httpsPort === 443 ? '' : `:${httpsPort}`;
  return [
    'server {',
    `    ${listen}`,
    '    server_name _;',
    '    location / {',
    `        return 308 https://$host${port}$request_uri;`,
    '    }',
    '}',
  ];
}
