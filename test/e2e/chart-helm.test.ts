// The operator's Helm chart against the real API server: helm lint, helm
// template in both RBAC modes, values.schema.json refusals, server-side
// dry-run of every rendered object (the optional monitoring objects against
// the real Prometheus Operator CRDs), helm install/uninstall, and the
// aggregated view/edit roles seen through `kubectl auth can-i`.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import {
  chartDir,
  ensureNodeEphemeralStorage,
  helm,
  helmTemplate,
  helmTemplateRaw,
  repoRoot,
  valuesFile,
  type KubeDoc,
} from '../lint/tools.js';

const CRD = 'realtimeclusters.socketfleet.dev';
const ns = `sf-chart-${process.pid}`;
const watched = [`${ns}-a`, `${ns}-b`];
const release = 'sfchart';
const fullname = 'sfchart-socketfleet-operator';
let cluster: Cluster;
let monitoringCrds: string[] = [];

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

interface Container {
  image: string;
  volumeMounts: unknown[];
  args: string[];
  securityContext: unknown;
  livenessProbe: { httpGet: unknown };
  readinessProbe: { httpGet: unknown };
  ports: unknown[];
  resources: { requests: Record<string, string>; limits: Record<string, string> };
}

interface PodSpec {
  serviceAccountName: string;
  volumes: unknown[];
  securityContext: unknown;
  containers: Container[];
}

function deployment(doc: KubeDoc): { replicas: number; pod: PodSpec; container: Container } {
  const spec = (doc as unknown as { spec: { replicas: number; template: { spec: PodSpec } } }).spec;
  return {
    replicas: spec.replicas,
    pod: spec.template.spec,
    container: spec.template.spec.containers[0]!,
  };
}

function byKind(docs: KubeDoc[], kind: string): KubeDoc[] {
  return docs.filter((d) => d.kind === kind);
}

function one(docs: KubeDoc[], kind: string, name: string): KubeDoc {
  const found = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered`);
  return found;
}

async function dryRun(text: string): Promise<void> {
  // --force-conflicts: the CRD may already be owned by helm or kubectl (other suites install it).
  const r = await cluster.kubectl(
    ['apply', '--dry-run=server', '--server-side', '--force-conflicts', '-f', '-'],
    text,
  );
  expect(r.stderr.trim(), r.stdout).toBe('');
  expect(r.code).toBe(0);
}

/** `kubectl auth can-i`; a resource written `plural.group/sub` checks that subresource. */
async function canI(
  as: string,
  verb: string,
  resource: string,
  namespace?: string,
): Promise<boolean> {
  const [res, sub] = resource.split('/');
  const args = ['auth', 'can-i', verb, res!, `--as=${as}`];
  if (sub) args.push(`--subresource=${sub}`);
  args.push(...(namespace ? ['-n', namespace] : ['--all-namespaces']));
  const r = await cluster.kubectl(args);
  return r.stdout.trim() === 'yes';
}

describe('socketfleet-operator chart', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await ensureNodeEphemeralStorage(cluster);
    for (const n of [ns, ...watched]) await cluster.kubectlOk(['create', 'namespace', n]);
  });

  afterAll(async () => {
    if (!cluster) return;
    await helm(['uninstall', release, '-n', ns, '--wait'], cluster.env);
    for (const n of [ns, ...watched]) {
      await cluster.kubectl(['delete', 'namespace', n, '--wait=false']);
    }
    for (const f of monitoringCrds) await cluster.kubectl(['delete', '-f', f, '--wait=false']);
    await cluster.stop();
  });

  it('ships the generated CRD in crds/', () => {
    const dir = join(chartDir, 'crds');
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
    expect(files, 'charts/socketfleet-operator/crds/ is empty: run `npm run gen`').not.toEqual([]);
  });

  it('passes helm lint --strict with default values and with watchNamespaces', async () => {
    for (const extra of [[], ['-f', valuesFile({ watchNamespaces: watched })]]) {
      const r = await helm(['lint', '--strict', chartDir, ...extra]);
      expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.code).toBe(0);
    }
  });

  it('renders the all-namespaces mode: a ClusterRole, and Leases only in the release namespace', async () => {
    const { docs } = await helmTemplate({ release, namespace: ns });
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
      [
        `ClusterRole/${fullname}`,
        `ClusterRole/socketfleet-edit`,
        `ClusterRole/socketfleet-view`,
        `ClusterRoleBinding/${fullname}`,
        `Deployment/${fullname}`,
        `NetworkPolicy/${fullname}`,
        `PodDisruptionBudget/${fullname}`,
        `Role/${fullname}-leader-election`,
        `RoleBinding/${fullname}-leader-election`,
        `Secret/${fullname}-key`,
        `Service/${fullname}-metrics`,
        `ServiceAccount/${fullname}`,
      ].sort(),
    );
    // The operator key: random, kept on uninstall, mounted as a file (no RBAC on Secrets).
    const key = one(docs, 'Secret', `${fullname}-key`);
    expect((key.metadata as { annotations?: unknown }).annotations).toEqual({
      'helm.sh/resource-policy': 'keep',
    });
    expect(Buffer.from((key.data as { key: string }).key, 'base64').length).toBe(64);
    const rules = one(docs, 'ClusterRole', fullname).rules as Rule[];
    const flat = rules.flatMap((r) => [...r.apiGroups, ...r.resources, ...r.verbs]);
    expect(flat.filter((v) => v.includes('*'))).toEqual([]);
    expect(rules.some((r) => r.resources.includes('leases'))).toBe(false);
    const lease = one(docs, 'Role', `${fullname}-leader-election`);
    expect(lease.metadata.namespace).toBe(ns);
    expect(lease.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'create', 'update'],
      },
    ]);

    const { replicas, pod, container: c } = deployment(one(docs, 'Deployment', fullname));
    expect(replicas).toBe(2);
    expect(pod.serviceAccountName).toBe(fullname);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.image).toBe('socketfleet/operator:0.1.0');
    expect(c.args).toEqual([
      'operator',
      '--metrics-port=8080',
      `--leader-election-namespace=${ns}`,
      `--lease-name=${fullname}`,
      '--log-level=info',
      '--operator-key-file=/etc/socketfleet/operator-key/key',
    ]);
    expect(pod.volumes).toContainEqual({
      name: 'operator-key',
      secret: { secretName: `${fullname}-key`, defaultMode: 0o440 },
    });
    expect(c.volumeMounts).toContainEqual({
      name: 'operator-key',
      mountPath: '/etc/socketfleet/operator-key',
      readOnly: true,
    });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.resources.requests).toMatchObject({ cpu: '100m', memory: '128Mi' });
    expect(c.resources.limits).toMatchObject({ memory: '512Mi' });
  });

  it('renders the namespaced mode: a Role per watched namespace and no cluster-wide grant', async () => {
    const { docs } = await helmTemplate({
      release,
      namespace: ns,
      values: { watchNamespaces: watched },
    });
    expect(byKind(docs, 'ClusterRoleBinding')).toEqual([]);
    expect(
      byKind(docs, 'ClusterRole')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['socketfleet-edit', 'socketfleet-view']);
    const roles = byKind(docs, 'Role').map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
    expect(roles.sort()).toEqual(
      [`${ns}/${fullname}-leader-election`, ...watched.map((w) => `${w}/${fullname}`)].sort(),
    );
    const bindings = byKind(docs, 'RoleBinding').map(
      (d) => `${d.metadata.namespace}/${d.metadata.name}`,
    );
    expect(bindings.sort()).toEqual(roles.sort());
    const { args } = deployment(one(docs, 'Deployment', fullname)).container;
    expect(args.filter((a) => a.startsWith('--namespace='))).toEqual(
      watched.map((w) => `--namespace=${w}`),
    );
  });

  it('renders bring-your-own ServiceAccount/RBAC and a single replica without a PDB', async () => {
    const { docs } = await helmTemplate({
      release,
      namespace: ns,
      values: {
        replicaCount: 1,
        serviceAccount: { create: false, name: 'platform-operator' },
        rbac: { create: false, aggregateToDefaultRoles: false },
      },
    });
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'Deployment',
      'NetworkPolicy',
      'Secret',
      'Service',
    ]);
    expect(deployment(one(docs, 'Deployment', fullname)).pod.serviceAccountName).toBe(
      'platform-operator',
    );
  });

  it('renders the optional ServiceMonitor, PrometheusRule and Grafana dashboard', async () => {
    const { docs } = await helmTemplate({
      release,
      namespace: ns,
      values: {
        metrics: { serviceMonitor: { enabled: true, labels: { release: 'prom' } } },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    });
    const sm = one(docs, 'ServiceMonitor', fullname) as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { endpoints: { port: string }[] };
    };
    expect(sm.metadata.labels.release).toBe('prom');
    expect(sm.spec.endpoints[0]!.port).toBe('metrics');
    const rule = one(docs, 'PrometheusRule', fullname) as unknown as {
      spec: { groups: { rules: { alert: string; expr: string }[] }[] };
    };
    const alerts = rule.spec.groups[0]!.rules.map((r) => r.alert);
    expect(alerts).toEqual([
      'SocketfleetRedisShardDown',
      'SocketfleetGatewayWithoutEndpoints',
      'SocketfleetServerCannotReachShard',
      'SocketfleetOperatorWithoutLeader',
      'SocketfleetReconcileErrors',
      'SocketfleetRedisNodeUnresponsive',
      'SocketfleetEventLoopLag',
      'SocketfleetPersistentPublishLoss',
      'SocketfleetRedisShardWithoutReplica',
      'SocketfleetConnectionsPileUp',
      'SocketfleetGatewayConfigRejected',
    ]);
    const cm = one(docs, 'ConfigMap', `${fullname}-dashboard`) as unknown as {
      metadata: { labels: Record<string, string> };
      data: Record<string, string>;
    };
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    const dashboard = JSON.parse(cm.data['socketfleet.json']!) as {
      title: string;
      panels: unknown[];
    };
    expect(dashboard.title).toBe('socketfleet');
    expect(dashboard.panels.length).toBeGreaterThan(0);
  });

  it('refuses bad values with a message naming the field and the rule', async () => {
    const cases: [unknown, string][] = [
      [{ replicaCount: 0 }, "at '/replicaCount': minimum: got 0, want 1"],
      [{ watchNamespaces: 'team-a' }, "at '/watchNamespaces': got string, want array"],
      [{ watchNamespaces: ['Team_A'] }, "at '/watchNamespaces/0': 'Team_A' does not match pattern"],
      [{ watchNamespaces: ['a', 'a'] }, "at '/watchNamespaces': items at 0 and 1 are equal"],
      [{ replicas: 3 }, "additional properties 'replicas' not allowed"],
      [{ image: { pullPolicy: 'Sometimes' } }, "at '/image/pullPolicy': value must be one of"],
      [{ metricsPort: 80 }, "at '/metricsPort': minimum: got 80"],
      [{ logLevel: 'verbose' }, "at '/logLevel': value must be one of"],
    ];
    for (const [values, field] of cases) {
      const r = await helmTemplateRaw({ values });
      expect(r.code, JSON.stringify(values)).not.toBe(0);
      expect(r.stderr).toContain("values don't meet the specifications of the schema");
      expect(r.stderr).toContain(field);
    }
    const noSa = await helmTemplateRaw({ values: { serviceAccount: { create: false } } });
    expect(noSa.code).not.toBe(0);
    expect(noSa.stderr).toContain(
      'serviceAccount.name is required when serviceAccount.create is false',
    );
    const r = await helmTemplateRaw({
      values: { metrics: { service: { enabled: false }, serviceMonitor: { enabled: true } } },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor scrapes that Service',
    );
  });

  it('every rendered object is accepted by the API server (dry-run=server)', async () => {
    await dryRun(
      (await helmTemplate({ release, namespace: ns, extraArgs: ['--include-crds'] })).text,
    );
    await dryRun(
      (await helmTemplate({ release, namespace: ns, values: { watchNamespaces: watched } })).text,
    );
    const crds = await run('bash', [join(repoRoot, 'test', 'lint', 'monitoring-crds.sh')]);
    expect(crds.code, crds.stderr).toBe(0);
    const dir = crds.stdout.trim();
    monitoringCrds = [
      join(dir, 'monitoring.coreos.com_servicemonitors.yaml'),
      join(dir, 'monitoring.coreos.com_prometheusrules.yaml'),
    ];
    for (const f of monitoringCrds) await cluster.kubectlOk(['apply', '--server-side', '-f', f]);
    for (const name of ['servicemonitors', 'prometheusrules']) {
      await cluster.kubectlOk([
        'wait',
        '--for=condition=Established',
        `crd/${name}.monitoring.coreos.com`,
        '--timeout=60s',
      ]);
    }
    await dryRun(
      (
        await helmTemplate({
          release,
          namespace: ns,
          values: {
            metrics: { serviceMonitor: { enabled: true } },
            prometheusRule: { enabled: true },
            grafanaDashboard: { enabled: true },
          },
        })
      ).text,
    );
  });

  it('installs (operator pods scheduled and Ready), grants view/edit through aggregation, and uninstalls keeping the CRD', async () => {
    const install = await helm(
      ['install', release, chartDir, '-n', ns, '--wait', '--timeout', '2m'],
      cluster.env,
    );
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('kubectl get rtc -A -w');
    await cluster.kubectlOk(['wait', '--for=condition=Established', `crd/${CRD}`, '--timeout=60s']);
    const deploy = JSON.parse(
      await cluster.kubectlOk(['-n', ns, 'get', 'deployment', fullname, '-o', 'json']),
    ) as { status: { readyReplicas?: number } };
    expect(deploy.status.readyReplicas).toBe(2);

    // The operator's identity: what it needs, and nothing beyond.
    const sa = `system:serviceaccount:${ns}:${fullname}`;
    expect(await canI(sa, 'watch', 'realtimeclusters.socketfleet.dev')).toBe(true);
    expect(await canI(sa, 'patch', 'realtimeclusters.socketfleet.dev/status')).toBe(true);
    expect(await canI(sa, 'create', 'statefulsets.apps')).toBe(true);
    expect(await canI(sa, 'update', 'leases.coordination.k8s.io', ns)).toBe(true);
    expect(await canI(sa, 'update', 'leases.coordination.k8s.io', 'default')).toBe(false);
    expect(await canI(sa, 'update', 'realtimeclusters.socketfleet.dev')).toBe(false);
    expect(await canI(sa, 'patch', 'secrets')).toBe(false);
    // It reads its own Redis password Secret by name (Redis Cluster administration), never lists.
    expect(await canI(sa, 'list', 'secrets')).toBe(false);
    expect(await canI(sa, 'get', 'pods')).toBe(false);
    // It creates the gateway sync Role and its binding, but may not bind or escalate other roles.
    expect(await canI(sa, 'bind', 'clusterroles.rbac.authorization.k8s.io')).toBe(false);
    expect(await canI(sa, 'escalate', 'roles.rbac.authorization.k8s.io')).toBe(false);

    // Users holding the built-in roles reach RealtimeClusters through aggregation.
    await cluster.kubectlOk([
      '-n',
      ns,
      'create',
      'rolebinding',
      'viewer',
      '--clusterrole=view',
      '--user=vera',
    ]);
    await cluster.kubectlOk([
      '-n',
      ns,
      'create',
      'rolebinding',
      'editor',
      '--clusterrole=edit',
      '--user=eddie',
    ]);
    await waitFor(
      'view/edit aggregation',
      async () =>
        (await canI('vera', 'list', 'realtimeclusters.socketfleet.dev', ns)) &&
        (await canI('eddie', 'patch', 'realtimeclusters.socketfleet.dev/scale', ns)),
    );
    expect(await canI('vera', 'create', 'realtimeclusters.socketfleet.dev', ns)).toBe(false);
    expect(await canI('eddie', 'create', 'realtimeclusters.socketfleet.dev', ns)).toBe(true);
    expect(await canI('eddie', 'delete', 'realtimeclusters.socketfleet.dev', ns)).toBe(true);
    expect(await canI('eddie', 'patch', 'realtimeclusters.socketfleet.dev/status', ns)).toBe(false);

    const uninstall = await helm(['uninstall', release, '-n', ns, '--wait'], cluster.env);
    expect(uninstall.code, uninstall.stderr).toBe(0);
    for (const [kind, name, namespace] of [
      ['deployment', fullname, ns],
      ['serviceaccount', fullname, ns],
      ['role', `${fullname}-leader-election`, ns],
      ['clusterrole', fullname, undefined],
      ['clusterrolebinding', fullname, undefined],
      ['clusterrole', 'socketfleet-view', undefined],
    ] as const) {
      const r = await cluster.kubectl(['get', kind, name, ...(namespace ? ['-n', namespace] : [])]);
      expect(r.stderr, `${kind}/${name} left behind`).toContain('NotFound');
    }
    // Helm never deletes CRDs (that would delete every RealtimeCluster).
    expect((await cluster.kubectl(['get', 'crd', CRD])).code).toBe(0);
    await waitFor('operator pods gone', async () => {
      const pods = JSON.parse(
        await cluster.kubectlOk([
          '-n',
          ns,
          'get',
          'pods',
          '-l',
          'app.kubernetes.io/component=operator',
          '-o',
          'json',
        ]),
      ) as { items: unknown[] };
      return pods.items.length === 0;
    });
  });
});
