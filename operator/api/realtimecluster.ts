import { isIP } from 'node:net';
import { z } from 'zod';
import {
  celList,
  celMap,
  HOST_WIDE_NET_SYSCTLS,
  isPodNetSysctl,
  NAMESPACED_SYSCTL_MESSAGE,
  NET_SYSCTL_PATTERN,
  SAFE_SYSCTLS,
} from './sysctls.js';
import {
  DEFAULT_NGINX_EXPORTER_IMAGE,
  DEFAULT_REDIS_EXPORTER_IMAGE,
  GATEWAY_EXPORTER_DOC,
  GatewayLimitsSchema,
  GatewayTlsSchema,
  REDIS_EXPORTER_DOC,
} from './gateway-options.js';
import {
  REDIS_TLS_EXTERNAL_MESSAGE,
  REDIS_TLS_IMMUTABLE_MESSAGE,
  RedisTlsSchema,
} from './redis-tls.js';

/**
 * The RealtimeCluster API: the single source of truth for its types, defaults and field docs.
 * The CRD (crds/), the README's field reference and `kubectl explain` all come from here.
 * Object fields use `prefault({})` so their nested defaults apply when the user omits them,
 * the same way the API server's structural defaulting does.
 * Spec objects are strict: the API server would silently prune an unknown (misspelled) field,
 * so parseRealtimeCluster names it instead. Cross-field rules live twice, as zod refinements
 * (for render and the operator) and as CEL x-kubernetes-validations (for the API server).
 */

const TRUSTED_PROXY_MESSAGE = 'must be an IP address or CIDR';

/** An IPv4 or IPv6 address, or one with a prefix length its family allows. */
function isIpOrCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

export const GROUP = 'socketfleet.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'RealtimeCluster';
export const PLURAL = 'realtimeclusters';
export const SINGULAR = 'realtimecluster';
export const SHORT_NAMES = ['rtc'];

/** Where the API server must keep unknown fields: Kubernetes types we pass through untouched. */
const preserveUnknown = { 'x-kubernetes-preserve-unknown-fields': true } as const;

const quantity = z
  .union([
    z
      .string()
      .regex(
        /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/,
        'must be a Kubernetes quantity such as 500m, 1Gi or 2',
      ),
    z.number().nonnegative(),
  ])
  .meta({ 'x-kubernetes-int-or-string': true });

export const ResourceRequirementsSchema = z
  .object({
    requests: z
      .record(z.string(), quantity)
      .optional()
      .describe('Minimum resources the pod is scheduled with.'),
    limits: z
      .record(z.string(), quantity)
      .optional()
      .describe('Maximum resources the container may use.'),
  })
  .strict()
  .describe('Kubernetes resource requests and limits (cpu, memory).');

const resourcesDefault = (cpu: string, memory: string, memoryLimit: string) =>
  ResourceRequirementsSchema.default({
    requests: { cpu, memory },
    limits: { memory: memoryLimit },
  });

/** An optional Prometheus exporter sidecar (spec.gateway.exporter, spec.redis.exporter). */
const exporterSchema = (what: string, image: string, doc: string) =>
  z
    .object({
      enabled: z
        .boolean()
        .default(false)
        .describe(`Run a Prometheus exporter sidecar in every ${what} pod.`),
      image: z.string().min(1).default(image).describe('Image of the exporter sidecar.'),
      resources: resourcesDefault('10m', '16Mi', '64Mi'),
    })
    .strict()
    .describe(doc);

export const PARSERS = ['msgpack', 'json'] as const;
export const TRANSPORTS = ['polling', 'websocket'] as const;
export const GATEWAY_MODES = ['managed', 'none'] as const;
export const BALANCE_MODES = ['ip-hash', 'consistent-hash', 'room-affinity'] as const;
export const TUNING_MODES = ['privileged-init', 'safe-sysctls', 'off'] as const;
export const CLIENT_AUTH_MODES = ['jwt', 'none'] as const;
export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;

/** Proxies and clients must see a heartbeat within this window; nginx timeouts are derived from it. */
export const MAX_HEARTBEAT_MS = 300000;
const HEARTBEAT_MESSAGE = `pingIntervalMs + pingTimeoutMs must be at most ${MAX_HEARTBEAT_MS} so proxies keep idle connections open`;
const DRAIN_MESSAGE =
  'must be less than spec.terminationGracePeriodSeconds so the drain finishes before the pod is killed';

export const DEFAULT_SYSCTLS: Readonly<Record<string, string>> = {
  'net.core.somaxconn': '65535',
  'net.ipv4.tcp_max_syn_backlog': '65535',
  'net.ipv4.ip_local_port_range': '1024 65535',
  'net.ipv4.tcp_tw_reuse': '1',
  'net.ipv4.tcp_fin_timeout': '15',
  'net.ipv4.tcp_keepalive_time': '300',
};

export const PVC_RETENTION = ['Delete', 'Retain'] as const;
export const PERSISTENCE_IMMUTABLE_MESSAGE =
  'cannot change on an existing cluster: the shard volumes come from StatefulSet volumeClaimTemplates, which Kubernetes never updates; create a new RealtimeCluster (or delete and re-create this one) to change persistence';

/** busybox 1.37 by digest: what runs privileged must not change when a tag moves. */
export const DEFAULT_INIT_IMAGE =
  'busybox:1.37@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0';
const MAX_SYSCTLS = 64;
const SAFE_MODE_MESSAGE =
  "cannot be set in safe-sysctls mode: it is not one of the kubelet's safe sysctls; list it in tuning.kubeletAllowedUnsafeSysctls if your kubelets allow it, use tuning.mode privileged-init, or remove it";

export const SocketIOSpecSchema = z
  .object({
    parser: z
      .enum(PARSERS)
      .default('msgpack')
      .describe(
        'Wire encoding between clients and servers: msgpack (binary, smaller, needs socket.io-msgpack-parser in the client) or json (the Socket.IO default).',
      ),
    pingIntervalMs: z
      .int()
      .min(1000)
      .max(300000)
      .default(25000)
      .describe(
        'Interval between server heartbeats, in milliseconds. Proxy read timeouts must exceed pingIntervalMs + pingTimeoutMs.',
      ),
    pingTimeoutMs: z
      .int()
      .min(1000)
      .max(300000)
      .default(20000)
      .describe(
        'How long the server waits for a heartbeat answer before it closes the connection, in milliseconds.',
      ),
    maxPayloadBytes: z
      .int()
      .min(1024)
      .max(104857600)
      .default(100000)
      .describe(
        'Largest message a client may send, in bytes; a larger one closes that client only.',
      ),
    transports: z
      .array(z.enum(TRANSPORTS))
      .min(1)
      .max(2)
      .default(['polling', 'websocket'])
      .meta({ 'x-kubernetes-list-type': 'set' })
      .describe(
        'Transports the server accepts. Keep polling for clients behind proxies that block WebSocket.',
      ),
    corsOrigins: z
      .array(z.string().min(1))
      .max(64)
      .default([])
      .describe('Origins allowed by CORS for browser clients; empty means same-origin only.'),
    eventsPerSecond: z
      .int()
      .min(1)
      .max(100000)
      .default(100)
      .describe(
        'Per-connection rate limit of the relay application, in events per second; excess events are refused with an error acknowledgement.',
      ),
    drainSeconds: z
      .int()
      .min(0)
      .max(3600)
      .default(20)
      .describe(
        'On shutdown, the window over which a server spreads the disconnection of its clients so they reconnect elsewhere without a thundering herd. Must be shorter than terminationGracePeriodSeconds.',
      ),
    connectionStateRecovery: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            "Socket.IO's connection state recovery across pods: a client that reconnects to any pod within maxDisconnectionSeconds gets back its id, rooms, socket.data and every broadcast to its rooms it missed, in order, without duplicates. Stored on the Redis Cluster: a bounded log per room on the room's shard, sessions, one delivery journal per pod. Off by default: it adds Redis writes per broadcast and per delivery batch and one Redis round trip of latency (README: measured cost). Acknowledged and volatile emits are not replayed.",
          ),
        maxDisconnectionSeconds: z
          .int()
          .min(1)
          .max(3600)
          .default(120)
          .describe(
            'How long after a disconnect a session can still be recovered; room logs keep this window plus two heartbeats of history, so Redis memory grows with it.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Connection state recovery (off by default).'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.pingIntervalMs + v.pingTimeoutMs > MAX_HEARTBEAT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['pingTimeoutMs'],
        message: HEARTBEAT_MESSAGE,
      });
    }
    if (new Set(v.transports).size !== v.transports.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['transports'],
        message: 'must not repeat a transport',
      });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: `(has(self.pingIntervalMs) ? self.pingIntervalMs : 25000) + (has(self.pingTimeoutMs) ? self.pingTimeoutMs : 20000) <= ${MAX_HEARTBEAT_MS}`,
        message: HEARTBEAT_MESSAGE,
        fieldPath: '.pingTimeoutMs',
      },
    ],
  })
  .describe('Socket.IO server settings.');

const secretKeyRef = (defaultKey: string, what: string) =>
  z
    .object({
      name: z
        .string()
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Secret name')
        .max(253)
        .describe("Name of the Secret, in the RealtimeCluster's namespace."),
      key: z
        .string()
        .regex(/^[-._a-zA-Z0-9]+$/, 'must be a Secret data key')
        .default(defaultKey)
        .describe(`Key in the Secret that holds ${what}.`),
    })
    .strict();

export const RedisNodeAddressSchema = z
  .object({
    host: z
      .string()
      .regex(/^[A-Za-z0-9]([-A-Za-z0-9.:]*[A-Za-z0-9])?$/, 'must be a host name or IP address')
      .max(253)
      .describe('Host name or IP address of a node.'),
    port: z.int().min(1).max(65535).default(6379).describe('Port of the node.'),
  })
  .strict();

export const ExternalRedisSchema = z
  .object({
    nodes: z
      .array(RedisNodeAddressSchema)
      .min(1)
      .max(64)
      .describe(
        'Seed nodes of an existing Redis Cluster (7.0 or newer, cluster mode enabled); the servers discover the rest from them.',
      ),
    username: z
      .string()
      .regex(/^[!-~]+$/, 'must be a Redis ACL user name (printable, no spaces)')
      .max(128)
      .optional()
      .describe(
        'ACL user the servers log in as (AUTH username password); the default user when unset. It needs SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and PUBSUB SHARDNUMSUB on channels socket.io#*, plus CLUSTER SLOTS, INFO and PING.',
      ),
    passwordSecret: secretKeyRef('password', 'the password')
      .optional()
      .describe(
        'Secret with the password of the user (username, or the default user); none when the cluster has no auth. Mounted into the server pods as a file, never an environment variable.',
      ),
    tls: z
      .object({
        caSecret: secretKeyRef('ca.crt', 'the PEM CA bundle')
          .optional()
          .describe("CA that signed the nodes' certificates; the system CAs when unset."),
        clientCertSecret: z
          .object({
            name: z
              .string()
              .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Secret name')
              .max(253)
              .describe('Name of a kubernetes.io/tls Secret (tls.crt and tls.key).'),
          })
          .strict()
          .optional()
          .describe('Client certificate, for clusters that require mutual TLS.'),
        serverName: z
          .string()
          .min(1)
          .max(253)
          .optional()
          .describe('Name the node certificates are checked against; the node host when unset.'),
      })
      .strict()
      .optional()
      .describe('Connect over TLS; plain TCP when unset.'),
  })
  .strict()
  .describe(
    'Use an existing Redis Cluster instead of operator-run shards: the operator then runs no Redis, and shards, replicasPerShard, image, resources, maxClients, nodeTimeoutMs, persistence and auth are ignored.',
  );

export const RedisSpecSchema = z
  .object({
    shards: z
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe(
        'Number of Redis Cluster masters, one StatefulSet each, with the 16384 hash slots spread evenly over them. A change moves slots online (no server restarts): a new shard is joined and filled, a removed shard is emptied before its StatefulSet is deleted.',
      ),
    replicasPerShard: z
      .int()
      .min(0)
      .max(5)
      .default(1)
      .describe(
        'Replicas of each shard master. A replica takes over within about two node timeouts when its master fails; with 0, a failed shard silences the rooms it owns until its pod is back.',
      ),
    image: z
      .string()
      .min(1)
      .default('redis:7.4')
      .describe(
        'Redis container image (Redis 7 or newer, for sharded pub/sub and announced host names).',
      ),
    resources: resourcesDefault('100m', '128Mi', '512Mi'),
    maxClients: z
      .int()
      .min(128)
      .max(1000000)
      .default(10000)
      .describe('Redis maxclients: connections each Redis node accepts.'),
    nodeTimeoutMs: z
      .int()
      .min(1000)
      .max(60000)
      .default(5000)
      .describe(
        'cluster-node-timeout: how long a node may be unreachable before it is flagged failing; a replica is promoted about one to two timeouts after its master fails.',
      ),
    persistence: z
      .object({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Keep an append-only file and the node identity on a PersistentVolume. Pub/sub needs none; enable only if your handlers store data in Redis.',
          ),
        size: quantity.default('1Gi').describe('Size of each Redis node volume.'),
        storageClassName: z
          .string()
          .min(1)
          .optional()
          .describe('StorageClass of the Redis volumes; the cluster default when unset.'),
        retentionPolicy: z
          .object({
            whenDeleted: z
              .enum(PVC_RETENTION)
              .default('Delete')
              .describe(
                'What happens to the shard volumes when the RealtimeCluster (and so the StatefulSet) is deleted: Delete them, or Retain them for a later cluster of the same name.',
              ),
            whenScaled: z
              .enum(PVC_RETENTION)
              .default('Delete')
              .describe(
                'What happens to the volume of a shard replica removed by scaling the shard StatefulSet down.',
              ),
          })
          .strict()
          .prefault({})
          .describe(
            'persistentVolumeClaimRetentionPolicy of the shard StatefulSets (Kubernetes 1.27+). Delete by default: a volume nobody uses any more costs money and holds data.',
          ),
      })
      .strict()
      .prefault({})
      .meta({
        // volumeClaimTemplates of a StatefulSet are immutable: refuse the change up front
        // instead of an apply the API server rejects on every retry.
        'x-kubernetes-validations': [
          {
            // has(): the API server also checks the rules against the default ({}).
            rule: '(has(self.enabled) && self.enabled) == (has(oldSelf.enabled) && oldSelf.enabled)',
            message: PERSISTENCE_IMMUTABLE_MESSAGE,
            fieldPath: '.enabled',
          },
          {
            rule: 'has(self.size) == has(oldSelf.size) && (!has(self.size) || self.size == oldSelf.size)',
            message: PERSISTENCE_IMMUTABLE_MESSAGE,
            fieldPath: '.size',
          },
          {
            rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
            message: PERSISTENCE_IMMUTABLE_MESSAGE,
            fieldPath: '.storageClassName',
          },
        ],
      })
      .describe('Optional persistence of each Redis node.'),
    auth: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Turn on Redis ACLs on every node: the default user is off, the servers log in as socketfleet-server (sharded pub/sub on socket.io# channels only), the operator as socketfleet-operator (cluster administration), replicas as socketfleet-replication. The passwords are derived from the operator key into the Secret <name>-redis-acl; they never appear in the spec, a command line or an environment variable.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Redis authentication.'),
    tls: RedisTlsSchema.optional(),
    external: ExternalRedisSchema.optional(),
    exporter: exporterSchema('Redis', DEFAULT_REDIS_EXPORTER_IMAGE, REDIS_EXPORTER_DOC).prefault(
      {},
    ),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.tls !== undefined && v.external !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: REDIS_TLS_EXTERNAL_MESSAGE });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '!has(self.tls) || !has(self.external)',
        message: REDIS_TLS_EXTERNAL_MESSAGE,
        fieldPath: '.tls',
      },
      {
        // A transition rule: the API server checks it on updates only. A rolling restart
        // cannot switch a live cluster, because a TLS node and a plaintext node share no bus.
        rule: 'has(self.tls) == has(oldSelf.tls)',
        message: REDIS_TLS_IMMUTABLE_MESSAGE,
        fieldPath: '.tls',
      },
    ],
  })
  .describe(
    'The Redis Cluster that carries messages between Socket.IO servers: operator-run shards, or an external cluster.',
  );

export const GatewaySpecSchema = z
  .object({
    mode: z
      .enum(GATEWAY_MODES)
      .default('managed')
      .describe(
        'managed: the operator runs an nginx gateway with sticky sessions; none: bring your own sticky load balancer.',
      ),
    balance: z
      .enum(BALANCE_MODES)
      .default('consistent-hash')
      .describe(
        'How the gateway keeps a client on one pod: consistent-hash (the full client address on a consistent-hash ring: a server joining or leaving moves only about 1/N of the clients), ip-hash (nginx ip_hash on the first three octets of the IPv4 address; a leaving server stays listed as down for terminationGracePeriodSeconds + 10 s so the other clients keep their server, but its final removal remaps most clients), or room-affinity (consistent hash of the room key in the handshake, falling back to the client address).',
      ),
    roomKey: z
      .string()
      .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/)
      .default('room')
      .describe(
        "With room-affinity: the handshake query parameter that names the client's main room.",
      ),
    replicas: z.int().min(1).max(100).default(2).describe('Number of gateway pods.'),
    image: z.string().min(1).default('nginx:1.27').describe('nginx container image.'),
    syncImage: z
      .string()
      .min(1)
      .default('socketfleet/operator:0.1.0')
      .describe(
        "Image of the gateway's sync sidecar (`socketfleet gateway-sync`, in the operator image): it follows the server EndpointSlices and reloads nginx within about a second.",
      ),
    resources: resourcesDefault('100m', '64Mi', '256Mi'),
    workerConnections: z
      .int()
      .min(1024)
      .max(1000000)
      .default(16384)
      .describe('nginx worker_connections; each proxied WebSocket uses two.'),
    workerShutdownTimeoutSeconds: z
      .int()
      .min(10)
      .max(86400)
      .default(600)
      .describe(
        'nginx worker_shutdown_timeout: how long the workers of a previous configuration keep their WebSockets after a reload (every change of the ready servers reloads). Connections still open then are closed and those clients reconnect, mostly to the same server.',
      ),
    proxyProtocol: z
      .boolean()
      .default(false)
      .describe(
        'Accept the PROXY protocol from the load balancer in front, so the real client address reaches nginx.',
      ),
    trustedProxies: z
      .array(
        z
          .string()
          .max(64)
          // Addresses, not characters: a pattern would allow 10.0.0.300/8, which nginx refuses at
          // its next reload.
          .refine(isIpOrCidr, TRUSTED_PROXY_MESSAGE)
          .meta({
            'x-kubernetes-validations': [
              { rule: 'isIP(self) || isCIDR(self)', message: TRUSTED_PROXY_MESSAGE },
            ],
          }),
      )
      .max(64)
      .default([])
      .describe(
        'CIDRs of proxies whose PROXY protocol header or X-Forwarded-For is trusted for the client address. With proxyProtocol and an empty list, the PROXY header is trusted from any peer.',
      ),
    service: z
      .object({
        type: z
          .enum(SERVICE_TYPES)
          .default('LoadBalancer')
          .describe('Kubernetes Service type of the gateway.'),
        port: z
          .int()
          .min(1)
          .max(65535)
          .default(80)
          .describe('Port the gateway Service listens on.'),
        externalTrafficPolicy: z
          .enum(['Cluster', 'Local'])
          .default('Local')
          .describe(
            'Local keeps the client source address (needed by ip-hash); applies to NodePort and LoadBalancer.',
          ),
        annotations: z
          .record(z.string(), z.string())
          .default({})
          .describe('Annotations for the gateway Service (cloud load balancer settings).'),
      })
      .strict()
      .prefault({})
      .describe('The Service in front of the gateway.'),
    limits: GatewayLimitsSchema.prefault({}),
    tls: GatewayTlsSchema.optional(),
    exporter: exporterSchema(
      'gateway',
      DEFAULT_NGINX_EXPORTER_IMAGE,
      GATEWAY_EXPORTER_DOC,
    ).prefault({}),
  })
  .strict()
  .describe('The sticky-session gateway in front of the Socket.IO pods.');

export const TuningSpecSchema = z
  .object({
    mode: z
      .enum(TUNING_MODES)
      .default('privileged-init')
      .describe(
        'privileged-init: a privileged init container writes every sysctl; safe-sysctls: only the kubelet\'s safe sysctls (plus kubeletAllowedUnsafeSysctls), through the pod securityContext (for Pod Security "restricted"/"baseline" namespaces), and any other sysctl you list is refused while the defaults it cannot set are left out; off: no tuning.',
      ),
    sysctls: z
      .record(
        z.string().regex(NET_SYSCTL_PATTERN, NAMESPACED_SYSCTL_MESSAGE),
        z.string().regex(/^[A-Za-z0-9 ._:,/-]+$/, 'must be a plain sysctl value'),
      )
      .superRefine((v, ctx) => {
        for (const key of Object.keys(v)) {
          if (NET_SYSCTL_PATTERN.test(key) && !isPodNetSysctl(key)) {
            ctx.addIssue({ code: 'custom', path: [key], message: NAMESPACED_SYSCTL_MESSAGE });
          }
        }
        if (Object.keys(v).length > MAX_SYSCTLS) {
          ctx.addIssue({ code: 'custom', message: `must have at most ${MAX_SYSCTLS} entries` });
        }
      })
      .default({ ...DEFAULT_SYSCTLS })
      .meta({
        maxProperties: MAX_SYSCTLS,
        'x-kubernetes-validations': [
          {
            rule: `self.all(k, k.matches('${NET_SYSCTL_PATTERN.source.replace(/\\/g, '\\\\')}') && !(k in ${celList(HOST_WIDE_NET_SYSCTLS)}))`,
            message: NAMESPACED_SYSCTL_MESSAGE,
          },
        ],
      })
      .describe(
        'Kernel parameters set in each Socket.IO pod network namespace: net.* keys only (the kernel namespaces them per pod), never host-wide ones.',
      ),
    kubeletAllowedUnsafeSysctls: z
      .array(z.string().regex(NET_SYSCTL_PATTERN, NAMESPACED_SYSCTL_MESSAGE))
      .max(MAX_SYSCTLS)
      .default([])
      .describe(
        'For safe-sysctls mode: sysctls beyond the safe set that your kubelets allow (KubeletConfiguration allowedUnsafeSysctls, or --allowed-unsafe-sysctls). They are set through the pod securityContext like the safe ones, with no privileged container; pods that use them need a namespace at Pod Security "privileged".',
      ),
    nofile: z
      .int()
      .min(1024)
      .max(16777216)
      .default(1048576)
      .describe(
        'Open-file limit the server raises its soft limit to, capped by the container hard limit.',
      ),
    initImage: z
      .string()
      .min(1)
      .default(DEFAULT_INIT_IMAGE)
      .describe(
        'Image of the privileged init container, pinned by digest by default so a moved tag cannot change what runs privileged.',
      ),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.mode !== 'safe-sysctls') return;
    const allowed = new Set([...SAFE_SYSCTLS, ...v.kubeletAllowedUnsafeSysctls]);
    for (const [key, value] of Object.entries(v.sysctls)) {
      if (allowed.has(key) || DEFAULT_SYSCTLS[key] === value) continue;
      ctx.addIssue({ code: 'custom', path: ['sysctls', key], message: SAFE_MODE_MESSAGE });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: `!has(self.mode) || self.mode != 'safe-sysctls' || !has(self.sysctls) || self.sysctls.all(k, k in ${celList(SAFE_SYSCTLS)} || (has(self.kubeletAllowedUnsafeSysctls) && k in self.kubeletAllowedUnsafeSysctls) || (k in ${celMap(DEFAULT_SYSCTLS)} && ${celMap(DEFAULT_SYSCTLS)}[k] == self.sysctls[k]))`,
        message: `every entry of sysctls: ${SAFE_MODE_MESSAGE}`,
        fieldPath: '.sysctls',
      },
    ],
  })
  .describe('Kernel and process tuning of the Socket.IO pods.');

const scalingRule = (direction: 'up' | 'down', window: number, pods: number, percent: number) =>
  z
    .object({
      stabilizationWindowSeconds: z
        .int()
        .min(0)
        .max(3600)
        .default(window)
        .describe(
          direction === 'up'
            ? 'The operator scales up only to the lowest replica count recommended over this many past seconds, so one spike does not add pods.'
            : 'The operator scales down only to the highest replica count recommended over this many past seconds, so a dip does not remove pods it soon needs again.',
        ),
      maxPodsPerPeriod: z
        .int()
        .min(1)
        .max(1000)
        .default(pods)
        .describe(`Pods that may be ${direction === 'up' ? 'added' : 'removed'} per period.`),
      maxPercentPerPeriod: z
        .int()
        .min(1)
        .max(1000)
        .default(percent)
        .describe(
          `Percent of the replicas at the start of the period that may be ${direction === 'up' ? 'added' : 'removed'} per period; the larger of the two limits applies.`,
        ),
      periodSeconds: z
        .int()
        .min(1)
        .max(1800)
        .default(15)
        .describe('Length of the period the step limits count over.'),
    })
    .strict();

export const AUTOSCALING_RANGE_MESSAGE = 'minReplicas must not exceed maxReplicas';

export const AutoscalingSpecSchema = z
  .object({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Let the operator set spec.replicas (through the scale subresource) from the connections and event-loop lag it reads from every ready server pod. A hand-set spec.replicas outside [minReplicas, maxReplicas] is then clamped.',
      ),
    minReplicas: z.int().min(1).max(1000).default(2).describe('Fewest server pods.'),
    maxReplicas: z.int().min(1).max(1000).default(10).describe('Most server pods.'),
    targetConnectionsPerPod: z
      .int()
      .min(1)
      .max(10000000)
      .default(1000)
      .describe(
        'Connected clients per server pod to aim for: desired replicas = ceil(total connections / target).',
      ),
    targetEventLoopLagMs: z
      .int()
      .min(1)
      .max(60000)
      .optional()
      .describe(
        'Scale up, too, when the mean event-loop lag (p99 over the sampling window) of the servers exceeds this many milliseconds. Lag never scales down.',
      ),
    tolerancePercent: z
      .int()
      .min(0)
      .max(100)
      .default(10)
      .describe(
        'No scaling while the load is within this percentage of the target, so noise does not move pods.',
      ),
    intervalSeconds: z
      .int()
      .min(1)
      .max(300)
      .default(15)
      .describe('How often the operator reads the server metrics and decides.'),
    behavior: z
      .object({
        scaleUp: scalingRule('up', 0, 4, 100)
          .prefault({})
          .describe(
            'Scale-up limits (defaults as a HorizontalPodAutoscaler: no window, 4 pods or 100% per 15 s).',
          ),
        scaleDown: scalingRule('down', 300, 1, 100)
          .prefault({})
          .describe(
            'Scale-down limits (defaults as a HorizontalPodAutoscaler: a 300 s window, 100% per 15 s).',
          ),
      })
      .strict()
      .prefault({})
      .describe('Stabilisation windows and step limits, so the replica count never flaps.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.minReplicas > v.maxReplicas) {
      ctx.addIssue({ code: 'custom', path: ['minReplicas'], message: AUTOSCALING_RANGE_MESSAGE });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '(has(self.minReplicas) ? self.minReplicas : 2) <= (has(self.maxReplicas) ? self.maxReplicas : 10)',
        message: AUTOSCALING_RANGE_MESSAGE,
        fieldPath: '.minReplicas',
      },
    ],
  })
  .describe('Connection-based autoscaling of the Socket.IO servers, run by the operator itself.');

export const RealtimeClusterSpecSchema = z
  .object({
    replicas: z
      .int()
      .min(0)
      .max(1000)
      .default(2)
      .describe('Number of Socket.IO server pods (the scale subresource).'),
    image: z
      .string()
      .min(1)
      .default('socketfleet/server:0.1.0')
      .describe('The Socket.IO server image: ours, or one built FROM it.'),
    imagePullPolicy: z
      .enum(['Always', 'IfNotPresent', 'Never'])
      .optional()
      .describe('Pull policy of every container.'),
    resources: resourcesDefault('250m', '256Mi', '1Gi'),
    terminationGracePeriodSeconds: z
      .int()
      .min(1)
      .max(3600)
      .default(30)
      .describe('Time a Socket.IO pod gets to drain its clients after SIGTERM.'),
    nodeSelector: z
      .record(z.string(), z.string())
      .optional()
      .describe('Node labels the Socket.IO pods must match.'),
    tolerations: z
      .array(z.record(z.string(), z.unknown()))
      .optional()
      .describe('Tolerations of the Socket.IO pods.'),
    affinity: z
      .record(z.string(), z.unknown())
      .meta(preserveUnknown)
      .optional()
      .describe('Affinity of the Socket.IO pods.'),
    topologySpreadConstraints: z
      .array(z.record(z.string(), z.unknown()).meta(preserveUnknown))
      .optional()
      .describe(
        'Topology spread constraints of the Socket.IO pods. Default: one soft constraint (maxSkew 1 over kubernetes.io/hostname, ScheduleAnyway, counting the pods of the current ReplicaSet), so the servers prefer distinct nodes. A given list, even an empty one, replaces it; add a topology.kubernetes.io/zone constraint here to spread over zones.',
      ),
    priorityClassName: z
      .string()
      .min(1)
      .optional()
      .describe('PriorityClass of the Socket.IO pods.'),
    socketio: SocketIOSpecSchema.prefault({}),
    redis: RedisSpecSchema.prefault({}),
    autoscaling: AutoscalingSpecSchema.prefault({}),
    gateway: GatewaySpecSchema.prefault({}),
    tuning: TuningSpecSchema.prefault({}),
    auth: z
      .object({
        mode: z
          .enum(CLIENT_AUTH_MODES)
          .default('jwt')
          .describe(
            'jwt: every client sends an HS256 JWT (with exp) as handshake auth.token, signed with the key in the Secret; your backend mints tokens for signed-in users. none: anyone who reaches the gateway may join any room and publish to it; the operator then warns in an Event.',
          ),
        secretName: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Secret name')
          .optional()
          .describe(
            'Secret (key jwt-key, at least 32 bytes) holding the JWT signing key. Unset: the operator creates <name>-client-auth with a random key once; read it from there to mint tokens.',
          ),
      })
      .strict()
      .prefault({})
      .describe('How the Socket.IO servers authenticate clients.'),
    rebalance: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'After the set of ready servers changes, ask each server to close (spread over spreadSeconds) the connections of clients whose consistent hash now points at another server, so new servers take their share and nobody moves twice. Only with gateway mode managed and balance consistent-hash; the operator does it when the server set has been stable for two autoscaling intervals.',
          ),
        spreadSeconds: z
          .int()
          .min(0)
          .max(600)
          .default(60)
          .describe('Window over which each server spreads the closes.'),
      })
      .strict()
      .prefault({})
      .describe('Rebalancing of existing connections after servers join.'),
    networkPolicy: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            "Restrict traffic: Redis only from this cluster's servers, servers only from the gateway (and scrapers on the metrics port).",
          ),
      })
      .strict()
      .prefault({})
      .describe('NetworkPolicies of the cluster.'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.socketio.drainSeconds >= v.terminationGracePeriodSeconds) {
      ctx.addIssue({ code: 'custom', path: ['socketio', 'drainSeconds'], message: DRAIN_MESSAGE });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '(has(self.socketio) && has(self.socketio.drainSeconds) ? self.socketio.drainSeconds : 20) < (has(self.terminationGracePeriodSeconds) ? self.terminationGracePeriodSeconds : 30)',
        message: DRAIN_MESSAGE,
        fieldPath: '.socketio.drainSeconds',
      },
    ],
  })
  .describe('Desired state of a Socket.IO cluster.');

export const ConditionSchema = z.object({
  type: z.string().describe('Ready, Progressing or Degraded.'),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().describe('One CamelCase word.'),
  message: z.string().describe('Human-readable detail.'),
  lastTransitionTime: z.string().describe('When the status last changed (RFC 3339).'),
  observedGeneration: z.int().optional().describe('The generation the condition was computed for.'),
});

export const RealtimeClusterStatusSchema = z
  .object({
    observedGeneration: z
      .int()
      .optional()
      .describe('The spec generation the operator last acted on.'),
    conditions: z
      .array(ConditionSchema)
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .optional()
      .describe('Ready, Progressing and Degraded.'),
    replicas: z.int().optional().describe('Socket.IO pods that exist.'),
    readyReplicas: z.int().optional().describe('Socket.IO pods that are ready.'),
    selector: z
      .string()
      .optional()
      .describe('Label selector of the Socket.IO pods (for the scale subresource).'),
    shards: z.int().optional().describe('Redis shards desired.'),
    readyShards: z
      .int()
      .optional()
      .describe(
        'Redis shards whose pods are ready and, when the operator can reach Redis, whose master serves its slots with every replica in sync.',
      ),
    redis: z
      .object({
        clusterState: z
          .string()
          .optional()
          .describe('cluster_state as the Redis nodes report it: ok or fail.'),
        slotsCovered: z.int().optional().describe('Hash slots (of 16384) served by a master.'),
        shards: z
          .array(
            z.object({
              index: z.int().describe('Shard number (its StatefulSet is <name>-redis-<index>).'),
              master: z.string().optional().describe('Pod that is the shard master now.'),
              slots: z.int().describe('Hash slots this shard serves.'),
              replicas: z.int().describe('Replicas attached to the master.'),
              replicasInSync: z.int().describe('Replicas whose link to the master is up.'),
              retiring: z
                .boolean()
                .optional()
                .describe('Removed from the spec; its slots are moving away before deletion.'),
            }),
          )
          .optional()
          .describe('Per shard, as the operator last observed it.'),
      })
      .optional()
      .describe('The Redis Cluster as the operator last observed it.'),
    endpoint: z.string().optional().describe('Where clients connect.'),
    autoscaling: z
      .object({
        connections: z.int().optional().describe('Clients connected over all sampled servers.'),
        sampledPods: z.int().optional().describe('Ready server pods whose metrics were read.'),
        eventLoopLagMs: z
          .number()
          .optional()
          .describe('Mean event-loop lag (p99) of the sampled servers, in milliseconds.'),
        desiredReplicas: z.int().optional().describe('Replicas the autoscaler decided on last.'),
        lastScaleTime: z
          .string()
          .optional()
          .describe('When the autoscaler last changed spec.replicas.'),
        reason: z
          .string()
          .optional()
          .describe('Why the autoscaler decided as it did, in one sentence.'),
      })
      .optional()
      .describe(
        'What the autoscaler last observed and decided (when spec.autoscaling is enabled).',
      ),
  })
  .describe('Observed state, written by the operator.');

export const RealtimeClusterSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: z
    .object({
      name: z
        .string()
        .regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase DNS label')
        .max(40, 'must be at most 40 characters so derived names fit'),
      namespace: z.string().optional(),
      uid: z.string().optional(),
      generation: z.int().optional(),
      resourceVersion: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .loose(),
  spec: RealtimeClusterSpecSchema.prefault({}),
  status: RealtimeClusterStatusSchema.optional(),
});

export type RealtimeCluster = z.infer<typeof RealtimeClusterSchema>;
export type RealtimeClusterSpec = z.infer<typeof RealtimeClusterSpecSchema>;
export type RealtimeClusterStatus = z.infer<typeof RealtimeClusterStatusSchema>;
export type Condition = z.infer<typeof ConditionSchema>;
export type AutoscalingSpec = z.infer<typeof AutoscalingSpecSchema>;
export type AutoscalingStatus = NonNullable<RealtimeClusterStatus['autoscaling']>;
