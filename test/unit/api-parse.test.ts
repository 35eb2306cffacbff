import { describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { DEFAULT_SYSCTLS } from '../../operator/api/realtimecluster.js';
import { clusterFrom, manifest } from './helpers.js';

function problems(spec: Record<string, unknown>, name = 'demo'): string[] {
  const r = parseRealtimeCluster(manifest(spec, name));
  return r.ok ? [] : r.problems;
}

describe('parseRealtimeCluster defaults', () => {
  it('fills every default of an empty spec', () => {
    const c = clusterFrom({
      apiVersion: 'socketfleet.dev/v1alpha1',
      kind: 'RealtimeCluster',
      metadata: { name: 'demo' },
    });
    expect(c.spec).toEqual({
      replicas: 2,
      image: 'socketfleet/server:0.1.0',
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      terminationGracePeriodSeconds: 30,
      socketio: {
        parser: 'msgpack',
        pingIntervalMs: 25000,
        pingTimeoutMs: 20000,
        maxPayloadBytes: 100000,
        transports: ['polling', 'websocket'],
        corsOrigins: [],
        eventsPerSecond: 100,
        drainSeconds: 20,
        connectionStateRecovery: { enabled: false, maxDisconnectionSeconds: 120 },
      },
      redis: {
        shards: 1,
        replicasPerShard: 1,
        image: 'redis:7.4',
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
        maxClients: 10000,
        nodeTimeoutMs: 5000,
        persistence: {
          enabled: false,
          size: '1Gi',
          retentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' },
        },
        auth: { enabled: true },
        exporter: {
          enabled: false,
          image: 'oliver006/redis_exporter:v1.67.0',
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
        },
      },
      autoscaling: {
        enabled: false,
        minReplicas: 2,
        maxReplicas: 10,
        targetConnectionsPerPod: 1000,
        tolerancePercent: 10,
        intervalSeconds: 15,
        behavior: {
          scaleUp: {
            stabilizationWindowSeconds: 0,
            maxPodsPerPeriod: 4,
            maxPercentPerPeriod: 100,
            periodSeconds: 15,
          },
          scaleDown: {
            stabilizationWindowSeconds: 300,
            maxPodsPerPeriod: 1,
            maxPercentPerPeriod: 100,
            periodSeconds: 15,
          },
        },
      },
      rebalance: { enabled: true, spreadSeconds: 60 },
      gateway: {
        mode: 'managed',
        balance: 'consistent-hash',
        roomKey: 'room',
        replicas: 2,
        image: 'nginx:1.27',
        syncImage: 'socketfleet/operator:0.1.0',
        resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
        workerConnections: 16384,
        workerShutdownTimeoutSeconds: 600,
        proxyProtocol: false,
        trustedProxies: [],
        service: {
          type: 'LoadBalancer',
          port: 80,
          externalTrafficPolicy: 'Local',
          annotations: {},
        },
        limits: {
          connectionsPerAddress: 2000,
          handshakesPerSecondPerAddress: 20,
          handshakeBurst: 400,
          clientHeaderTimeoutSeconds: 10,
          clientBodyTimeoutSeconds: 10,
        },
        exporter: {
          enabled: false,
          image: 'nginx/nginx-prometheus-exporter:1.4.2',
          resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
        },
      },
      tuning: {
        mode: 'privileged-init',
        sysctls: { ...DEFAULT_SYSCTLS },
        nofile: 1048576,
        initImage:
          'busybox:1.37@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0',
        kubeletAllowedUnsafeSysctls: [],
      },
      networkPolicy: { enabled: true },
      auth: { mode: 'jwt' },
    });
  });

  it('keeps nested defaults when a sibling field is set', () => {
    const c = clusterFrom(manifest({ redis: { shards: 3 }, gateway: { service: { port: 8443 } } }));
    expect(c.spec.redis.shards).toBe(3);
    expect(c.spec.redis.auth.enabled).toBe(true);
    expect(c.spec.gateway.service).toEqual({
      type: 'LoadBalancer',
      port: 8443,
      externalTrafficPolicy: 'Local',
      annotations: {},
    });
  });

  it('does not share the default sysctl map between parses', () => {
    const a = clusterFrom(manifest());
    a.spec.tuning.sysctls['net.core.somaxconn'] = '1';
    expect(clusterFrom(manifest()).spec.tuning.sysctls['net.core.somaxconn']).toBe('65535');
  });

  it('accepts numeric quantities and keeps unknown metadata', () => {
    const c = clusterFrom({
      ...manifest({ resources: { requests: { cpu: 1, memory: '1.5Gi' } } }),
      metadata: { name: 'demo', namespace: 'ns', uid: 'abc', creationTimestamp: 'x' },
    });
    expect(c.spec.resources.requests).toEqual({ cpu: 1, memory: '1.5Gi' });
    expect(c.metadata.uid).toBe('abc');
  });
});

describe('parseRealtimeCluster rejections', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['shards below one', { redis: { shards: 0 } }, 'spec.redis.shards: must be >= 1'],
    ['shards above 64', { redis: { shards: 65 } }, 'spec.redis.shards: must be <= 64'],
    [
      'too many replicas per shard',
      { redis: { replicasPerShard: 6 } },
      'spec.redis.replicasPerShard: must be <= 5',
    ],
    [
      'short node timeout',
      { redis: { nodeTimeoutMs: 500 } },
      'spec.redis.nodeTimeoutMs: must be >= 1000',
    ],
    [
      'external without nodes',
      { redis: { external: { nodes: [] } } },
      'spec.redis.external.nodes: must have at least 1 item',
    ],
    [
      'external node with a bad host',
      { redis: { external: { nodes: [{ host: 'redis one' }] } } },
      'spec.redis.external.nodes[0].host: must be a host name or IP address',
    ],
    [
      'external password Secret with a bad name',
      { redis: { external: { nodes: [{ host: 'r1' }], passwordSecret: { name: 'Bad_Name' } } } },
      'spec.redis.external.passwordSecret.name: must be a Secret name',
    ],
    [
      'unknown external TLS field',
      { redis: { external: { nodes: [{ host: 'r1' }], tls: { insecure: true } } } },
      'spec.redis.external.tls.insecure: is not a known field',
    ],
    ['fractional replicas', { replicas: 1.5 }, 'spec.replicas: must be an integer'],
    ['negative replicas', { replicas: -1 }, 'spec.replicas: must be >= 0'],
    ['replicas as text', { replicas: 'two' }, 'spec.replicas: must be an integer'],
    [
      'unknown parser',
      { socketio: { parser: 'xml' } },
      'spec.socketio.parser: must be one of msgpack, json',
    ],
    [
      'unknown balance',
      { gateway: { balance: 'round-robin' } },
      'spec.gateway.balance: must be one of ip-hash, consistent-hash, room-affinity',
    ],
    [
      'unknown tuning mode (YAML 1.1 reads off as false)',
      { tuning: { mode: false } },
      "spec.tuning.mode: must be one of privileged-init, safe-sysctls, off (quote 'off' in YAML)",
    ],
    [
      'unknown gateway mode',
      { gateway: { mode: 'ingress' } },
      'spec.gateway.mode: must be one of managed, none',
    ],
    [
      'unknown service type',
      { gateway: { service: { type: 'ExternalName' } } },
      'spec.gateway.service.type: must be one of ClusterIP, NodePort, LoadBalancer',
    ],
    [
      'empty transports',
      { socketio: { transports: [] } },
      'spec.socketio.transports: must have at least 1 item',
    ],
    [
      'repeated transport',
      { socketio: { transports: ['websocket', 'websocket'] } },
      'spec.socketio.transports: must not repeat a transport',
    ],
    [
      'unknown transport',
      { socketio: { transports: ['webtransport'] } },
      'spec.socketio.transports[0]: must be one of polling, websocket',
    ],
    [
      'short ping interval',
      { socketio: { pingIntervalMs: 999 } },
      'spec.socketio.pingIntervalMs: must be >= 1000',
    ],
    [
      'heartbeat window too long',
      { socketio: { pingIntervalMs: 200000, pingTimeoutMs: 100001 } },
      'spec.socketio.pingTimeoutMs: pingIntervalMs + pingTimeoutMs must be at most 300000 so proxies keep idle connections open',
    ],
    [
      'drain longer than grace period',
      { terminationGracePeriodSeconds: 20, socketio: { drainSeconds: 20 } },
      'spec.socketio.drainSeconds: must be less than spec.terminationGracePeriodSeconds so the drain finishes before the pod is killed',
    ],
    [
      'small payload limit',
      { socketio: { maxPayloadBytes: 10 } },
      'spec.socketio.maxPayloadBytes: must be >= 1024',
    ],
    ['empty image', { image: '' }, 'spec.image: must not be empty'],
    [
      'bad quantity',
      { resources: { requests: { cpu: 'lots' } } },
      'spec.resources.requests.cpu: must be a Kubernetes quantity such as 500m, 1Gi or 2',
    ],
    [
      'negative quantity',
      { redis: { resources: { limits: { memory: -1 } } } },
      'spec.redis.resources.limits.memory: must be >= 0',
    ],
    [
      'bad room key',
      { gateway: { roomKey: 'room-id' } },
      'spec.gateway.roomKey: must match /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/',
    ],
    [
      'bad trusted proxy',
      { gateway: { trustedProxies: ['lb.example.com'] } },
      'spec.gateway.trustedProxies[0]: must be an IP address or CIDR',
    ],
    [
      'trusted proxy with an octet over 255',
      { gateway: { trustedProxies: ['10.0.0.0/8', '10.0.0.300/8'] } },
      'spec.gateway.trustedProxies[1]: must be an IP address or CIDR',
    ],
    [
      'trusted proxy with a prefix too long',
      { gateway: { trustedProxies: ['fd00::/129'] } },
      'spec.gateway.trustedProxies[0]: must be an IP address or CIDR',
    ],
    [
      'small worker_connections',
      { gateway: { workerConnections: 10 } },
      'spec.gateway.workerConnections: must be >= 1024',
    ],
    [
      'bad sysctl name',
      { tuning: { sysctls: { somaxconn: '1' } } },
      'spec.tuning.sysctls.somaxconn: must be a sysctl of the pod network namespace (net.*, and not one the kernel keeps host-wide such as net.core.rmem_max); vm.*, fs.* and kernel.* keys would retune the node',
    ],
    [
      'host-wide sysctl (vm.*)',
      { tuning: { sysctls: { 'vm.max_map_count': '262144' } } },
      'spec.tuning.sysctls["vm.max_map_count"]: must be a sysctl of the pod network namespace (net.*, and not one the kernel keeps host-wide such as net.core.rmem_max); vm.*, fs.* and kernel.* keys would retune the node',
    ],
    [
      'host-wide sysctl (kernel.*)',
      { tuning: { sysctls: { 'kernel.pid_max': '4194304' } } },
      'spec.tuning.sysctls["kernel.pid_max"]: must be a sysctl of the pod network namespace (net.*, and not one the kernel keeps host-wide such as net.core.rmem_max); vm.*, fs.* and kernel.* keys would retune the node',
    ],
    [
      'host-wide net.core sysctl',
      { tuning: { sysctls: { 'net.core.rmem_max': '16777216' } } },
      'spec.tuning.sysctls["net.core.rmem_max"]: must be a sysctl of the pod network namespace (net.*, and not one the kernel keeps host-wide such as net.core.rmem_max); vm.*, fs.* and kernel.* keys would retune the node',
    ],
    [
      'explicit sysctl safe-sysctls cannot set',
      { tuning: { mode: 'safe-sysctls', sysctls: { 'net.core.somaxconn': '4096' } } },
      `spec.tuning.sysctls["net.core.somaxconn"]: cannot be set in safe-sysctls mode: it is not one of the kubelet's safe sysctls; list it in tuning.kubeletAllowedUnsafeSysctls if your kubelets allow it, use tuning.mode privileged-init, or remove it`,
    ],
    [
      'shell in a sysctl value',
      { tuning: { sysctls: { 'net.core.somaxconn': '1; reboot' } } },
      'spec.tuning.sysctls["net.core.somaxconn"]: must be a plain sysctl value',
    ],
    ['small nofile', { tuning: { nofile: 100 } }, 'spec.tuning.nofile: must be >= 1024'],
    ['unknown spec field', { shard: 3 }, 'spec.shard: is not a known field'],
    [
      'unknown nested field',
      { redis: { password: 'x' } },
      'spec.redis.password: is not a known field',
    ],
    ['wrong object type', { redis: 'big' }, 'spec.redis: must be an object'],
    [
      'persistence flag as text',
      { redis: { persistence: { enabled: 'yes' } } },
      'spec.redis.persistence.enabled: must be true or false',
    ],
  ];

  it.each(cases)('%s', (_label, spec, expected) => {
    expect(problems(spec)).toEqual([expected]);
  });

  it('names the metadata problems', () => {
    expect(problems({}, 'Bad_Name')).toEqual(['metadata.name: must be a lowercase DNS label']);
    expect(problems({}, 'a'.repeat(41))).toEqual([
      'metadata.name: must be at most 40 characters so derived names fit',
    ]);
  });

  it('reports every problem at once', () => {
    expect(problems({ replicas: -1, redis: { shards: 0 }, socketio: { parser: 'xml' } })).toEqual([
      'spec.replicas: must be >= 0',
      'spec.socketio.parser: must be one of msgpack, json',
      'spec.redis.shards: must be >= 1',
    ]);
  });

  it('rejects the wrong kind, version and shape', () => {
    const r = parseRealtimeCluster({ apiVersion: 'v1', kind: 'ConfigMap' });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems).toEqual([
      'apiVersion: must be "socketfleet.dev/v1alpha1"',
      'kind: must be "RealtimeCluster"',
      'metadata: is required',
    ]);
    expect(parseRealtimeCluster('spec: {}')).toEqual({
      ok: false,
      problems: ['document: must be a RealtimeCluster object'],
    });
  });
});
