import { z } from 'zod';

/**
 * The gateway's abuse limits, client TLS and the optional exporter sidecars (gateway and Redis).
 * Kept apart from realtimecluster.ts so that file stays a map of the spec; the field docs here
 * reach the CRD and `kubectl explain` like every other field.
 */

export const LIMITS_DOC =
  'Per-address abuse limits of the gateway, keyed on the real client address (so it must reach nginx: externalTrafficPolicy Local, proxyProtocol or trustedProxies; behind an SNAT every client shares the address of a node and these limits would apply to all of them together). The defaults are generous so that many users behind one NAT fit. A refused request gets 429 with Retry-After. 0 turns a limit off.';

export const GatewayLimitsSchema = z
  .object({
    connectionsPerAddress: z
      .int()
      .min(0)
      .max(1000000)
      .default(2000)
      .describe(
        'Socket.IO sessions one client address may hold at once (nginx limit_conn on GET requests in progress): an open WebSocket is one GET for its whole life, a long-polling client keeps one GET waiting (its POSTs are not counted), and a client upgrading from polling counts twice for a moment. 0 = no cap.',
      ),
    handshakesPerSecondPerAddress: z
      .number()
      .min(0)
      .max(100000)
      .default(20)
      .describe(
        'New Socket.IO sessions (handshakes: requests without a sid) one address may open per second, on average (nginx limit_req). Requests of an established session (polls, sends, the upgrade to WebSocket) are never counted. Fractions are allowed and rounded to whole handshakes per minute (0.5 = 30 per minute). 0 = no limit.',
      ),
    handshakeBurst: z
      .int()
      .min(0)
      .max(1000000)
      .default(400)
      .describe(
        'Handshakes one address may open at once beyond the rate, answered without delay; the burst refills at the rate. Sized for a reconnect storm of many clients behind one NAT after a gateway restart.',
      ),
    clientHeaderTimeoutSeconds: z
      .int()
      .min(1)
      .max(600)
      .default(10)
      .describe(
        'How long a client may take to send a request header (nginx client_header_timeout, 60 s by default in nginx): a slow sender is closed after this.',
      ),
    clientBodyTimeoutSeconds: z
      .int()
      .min(1)
      .max(600)
      .default(10)
      .describe(
        'Longest pause between two reads of a request body (nginx client_body_timeout): a long-polling POST that stalls is closed after this. Open WebSockets are not affected; their idle limit follows the heartbeat.',
      ),
  })
  .strict()
  .describe(LIMITS_DOC);

export const TLS_SECRET_NAME_MESSAGE = 'must be a Secret name';

export const GatewayTlsSchema = z
  .object({
    secretName: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, TLS_SECRET_NAME_MESSAGE)
      .max(253)
      .describe(
        "Secret of type kubernetes.io/tls (keys tls.crt and tls.key) in the cluster's namespace, e.g. made by a cert-manager Certificate. Mounted into the nginx container alone; a renewed certificate is picked up by a graceful reload, without restarting the pod.",
      ),
    redirectHttp: z
      .boolean()
      .default(true)
      .describe(
        'true: the Service also keeps its plain HTTP port, which answers every request with 308 to https:// (for people and health checkers; Socket.IO clients should use the https URL, since a WebSocket does not follow redirects). false: only the HTTPS port is exposed.',
      ),
    port: z
      .int()
      .min(1)
      .max(65535)
      .default(443)
      .describe('Port of the HTTPS listener on the gateway Service.'),
  })
  .strict()
  .describe(
    'Terminate client TLS at the gateway: nginx serves HTTPS (TLS 1.2 and 1.3, forward-secret AEAD ciphers only) with the certificate from the Secret, and speaks plain HTTP to the Socket.IO pods. HTTP/2 stays off: Socket.IO over WebSocket needs the HTTP/1.1 Upgrade.',
  );

export const DEFAULT_NGINX_EXPORTER_IMAGE = 'nginx/nginx-prometheus-exporter:1.4.2';
export const DEFAULT_REDIS_EXPORTER_IMAGE = 'oliver006/redis_exporter:v1.67.0';

export const GATEWAY_EXPORTER_DOC =
  "nginx-prometheus-exporter beside nginx: it reads nginx's stub_status on a listener bound to 127.0.0.1 inside the pod and serves nginx_* metrics (connections accepted, active, reading, writing, waiting; requests) on container port nginx-metrics (9113), which the chart's PodMonitor scrapes. Off by default: the servers' own metrics already count clients.";

export const REDIS_EXPORTER_DOC =
  "redis_exporter beside each Redis node: it reads INFO from its own node over loopback (with the Redis password from the cluster's Secret, as an environment variable) and serves redis_* metrics (up, memory, clients, commands) on container port redis-metrics (9121), which the chart's PodMonitor scrapes. Off by default.";
