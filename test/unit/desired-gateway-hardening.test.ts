// What spec.gateway.tls, spec.gateway.limits and the exporter switches change in the objects the
// operator builds: who mounts the key, which ports exist where, and what a bad value says.
import { describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import {
  buildGatewayDeployment,
  buildGatewayService,
  clusterEndpoint,
} from '../../operator/desired/gateway.js';
import { buildDesired } from '../../operator/desired/index.js';
import { buildNetworkPolicies } from '../../operator/desired/network-policy.js';
import { nginxRate } from '../../operator/desired/nginx-limits.js';
import { kubernetesNginxRuntime, renderNginxConf } from '../../operator/desired/nginx.js';
import { buildRedisStatefulSet } from '../../operator/desired/redis.js';
import { parseGatewaySyncFlags } from '../../operator/cli/gateway-sync.js';
import { clusterFrom, manifest } from './helpers.js';

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface Pod {
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string; items?: unknown[] } }[];
}

function pod(spec: Record<string, unknown>): Pod {
  const d = buildGatewayDeployment(clusterFrom(manifest(spec))) as unknown as {
    spec: { template: { spec: Pod } };
  };
  return d.spec.template.spec;
}

const tls = { gateway: { tls: { secretName: 'demo-tls' } } };

describe('gateway TLS', () => {
  it('mounts the key into nginx alone and the certificate alone into the sync sidecar', () => {
    const p = pod(tls);
    const nginx = p.containers.find((c) => c.name === 'nginx')!;
    const sync = p.containers.find((c) => c.name === 'sync')!;
    expect(nginx.volumeMounts.map((m) => m.name)).toContain('tls');
    expect(sync.volumeMounts.map((m) => m.name)).not.toContain('tls');
    expect(p.volumes.find((v) => v.name === 'tls')?.secret?.secretName).toBe('demo-tls');
    expect(p.volumes.find((v) => v.name === 'tls-cert')?.secret?.items).toEqual([
      { key: 'tls.crt', path: 'tls.crt' },
    ]);
    expect(sync.args).toContain('--reload-on-change=/etc/socketfleet/tls-watch/tls.crt');
    expect(nginx.ports?.map((x) => x.name)).toEqual(['http', 'https', 'health']);
  });

  it('exposes 443 beside the redirecting port 80, or 443 alone without the redirect', () => {
    const ports = (spec: Record<string, unknown>): unknown =>
      (
        buildGatewayService(clusterFrom(manifest(spec))) as unknown as {
          spec: { ports: unknown[] };
        }
      ).spec.ports;
    expect(ports(tls)).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' },
    ]);
    const only = { gateway: { tls: { secretName: 'demo-tls', redirectHttp: false, port: 8443 } } };
    expect(ports(only)).toEqual([
      { name: 'https', port: 8443, targetPort: 'https', protocol: 'TCP' },
    ]);
    expect(pod(only).containers[0]!.ports?.map((x) => x.name)).toEqual(['https', 'health']);
    const conf = renderNginxConf(
      clusterFrom(manifest(only)),
      [],
      kubernetesNginxRuntime(clusterFrom(manifest(only))),
    );
    expect(conf).not.toContain('listen 8080');
    expect(conf).toContain('listen 8443 ssl');
    expect(conf).not.toContain('http2');
    const gw = buildNetworkPolicies(clusterFrom(manifest(only))).find((n) =>
      n.metadata.name.endsWith('-gateway'),
    ) as unknown as { spec: { ingress: { ports: { port: number }[] }[] } };
    // No clear-text client port; 9114 is the sync sidecar's metrics (the operator, then scrapers).
    expect(gw.spec.ingress.flatMap((i) => i.ports.map((x) => x.port))).toEqual([8443, 9114, 9114]);
  });

  it('reports an https endpoint on the TLS port', () => {
    expect(clusterEndpoint(clusterFrom(manifest(tls)), 'ns', '203.0.113.7')).toBe(
      'https://203.0.113.7:443',
    );
    expect(clusterEndpoint(clusterFrom(manifest(tls)), 'ns', undefined)).toBe(
      'https://demo-gateway.ns.svc:443',
    );
    expect(clusterEndpoint(clusterFrom(manifest()), 'ns', undefined)).toBe(
      'demo-gateway.ns.svc:80',
    );
  });

  it('names the field of a bad Secret name', () => {
    const r = parseRealtimeCluster({
      ...manifest({ gateway: { tls: { secretName: 'Bad_Name' } } }),
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual(['spec.gateway.tls.secretName: must be a Secret name']);
  });

  it('passes the watched file to the sidecar flags', () => {
    const flags = parseGatewaySyncFlags([
      '--service=s',
      '--balance=ip-hash',
      '--upstreams-file=/u',
      '--pid-file=/p',
      '--namespace=n',
      '--reload-on-change=/etc/socketfleet/tls-watch/tls.crt',
    ]);
    expect(flags !== 'help' && flags.reloadOnChange).toBe('/etc/socketfleet/tls-watch/tls.crt');
  });
});

describe('gateway limits', () => {
  it('renders whole rates per second and fractions per minute', () => {
    expect(nginxRate(20)).toBe('20r/s');
    expect(nginxRate(0.5)).toBe('30r/m');
    expect(nginxRate(0.001)).toBe('1r/m');
  });

  it('leaves every limit out when turned off, keeping the timeouts', () => {
    const c = clusterFrom(
      manifest({
        gateway: { limits: { connectionsPerAddress: 0, handshakesPerSecondPerAddress: 0 } },
      }),
    );
    const conf = renderNginxConf(c, [], kubernetesNginxRuntime(c));
    expect(conf).not.toMatch(/limit_(conn|req)/);
    expect(conf).not.toContain('@limited');
    expect(conf).toContain('client_header_timeout 10s;');
  });

  it('warns when the limits would count a whole node as one address', () => {
    const warned = (gateway: Record<string, unknown>): string[] =>
      buildDesired(clusterFrom(manifest({ gateway }))).warnings.filter((w) =>
        w.startsWith('spec.gateway.limits:'),
      );
    const cluster = { service: { externalTrafficPolicy: 'Cluster' } };
    expect(warned(cluster)).toHaveLength(1);
    expect(warned({ ...cluster, trustedProxies: ['10.0.0.0/8'] })).toEqual([]);
    expect(warned({ service: { externalTrafficPolicy: 'Local' } })).toEqual([]);
    expect(
      warned({
        ...cluster,
        limits: { connectionsPerAddress: 0, handshakesPerSecondPerAddress: 0 },
      }),
    ).toEqual([]);
  });

  it('names the field of a negative limit', () => {
    const r = parseRealtimeCluster(manifest({ gateway: { limits: { handshakeBurst: -1 } } }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems).toEqual(['spec.gateway.limits.handshakeBurst: must be >= 0']);
  });
});

describe('exporter sidecars', () => {
  it('are absent by default', () => {
    expect(pod({}).containers.map((c) => c.name)).toEqual(['nginx', 'sync']);
    const sts = buildRedisStatefulSet(clusterFrom(manifest()), 0) as unknown as {
      spec: { template: { spec: Pod } };
    };
    expect(sts.spec.template.spec.containers.map((c) => c.name)).toEqual(['redis']);
  });

  it('read their neighbour over loopback, the Redis login from a Secret file only', () => {
    const gw = pod({ gateway: { exporter: { enabled: true, image: 'mirror/nginx-exporter:1' } } });
    const exporter = gw.containers.find((c) => c.name === 'exporter')!;
    expect(exporter.args).toContain('--nginx.scrape-uri=http://127.0.0.1:8082/stub_status');
    expect(exporter.ports).toEqual([
      { name: 'nginx-metrics', containerPort: 9113, protocol: 'TCP' },
    ]);
    const c = clusterFrom(manifest({ gateway: { exporter: { enabled: true } } }));
    expect(renderNginxConf(c, [], kubernetesNginxRuntime(c))).toContain('listen 127.0.0.1:8082;');

    const sts = buildRedisStatefulSet(
      clusterFrom(manifest({ redis: { exporter: { enabled: true } } })),
      0,
    ) as unknown as { spec: { template: { spec: Pod } } };
    const podSpec = sts.spec.template.spec as Pod & {
      volumes: { name: string; secret?: { secretName: string; items: unknown[] } }[];
    };
    const redis = podSpec.containers.find((x) => x.name === 'exporter')!;
    expect(redis.args).toEqual([
      '--redis.addr=redis://127.0.0.1:6379',
      '--web.listen-address=:9121',
      '--redis.password-file=/etc/redis-exporter/password-map.json',
    ]);
    // Its own read-only ACL user; no password in the environment.
    expect(redis.env).toEqual([{ name: 'REDIS_USER', value: 'socketfleet-exporter' }]);
    expect(podSpec.volumes.find((v) => v.name === 'exporter-auth')?.secret).toEqual({
      secretName: 'demo-redis-acl',
      defaultMode: 0o440,
      items: [{ key: 'exporter-password-map.json', path: 'password-map.json' }],
    });
  });
});
