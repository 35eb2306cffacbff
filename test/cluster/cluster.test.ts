// Smoke test of the test control plane itself: what the operator's e2e suite
// relies on really works (scheduling, kwok readiness, EndpointSlices, GC,
// CRD subresources, audit log).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditEvents, run, startCluster, waitFor, type Cluster } from './harness.js';

interface PodList {
  items: {
    metadata: { name: string; ownerReferences?: { kind: string }[] };
    spec: { nodeName?: string };
    status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
  }[];
}

const ns = `cluster-smoke-${process.pid}`;
let cluster: Cluster;

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json'])) as T;
}

function readyPods(list: PodList): PodList['items'] {
  return list.items.filter(
    (p) =>
      p.status.phase === 'Running' &&
      !!p.status.podIP &&
      !!p.spec.nodeName &&
      (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  );
}

describe('test control plane', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.kubectlOk(['create', 'namespace', ns]);
    // Pods need the namespace's default ServiceAccount (ServiceAccount admission).
    await waitFor('default serviceaccount', async () => {
      const r = await cluster.kubectl(['-n', ns, 'get', 'serviceaccount', 'default']);
      return r.code === 0;
    });
  });

  afterAll(async () => {
    if (!cluster) return;
    await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
    await cluster.stop();
  });

  it('reports the pinned server version and has 3 Ready kwok nodes', async () => {
    const version = await json<{ serverVersion: { gitVersion: string; minor: string } }>([
      'version',
    ]);
    expect(version.serverVersion.gitVersion).toBe('v1.36.3');
    expect(version.serverVersion.minor).toBe('36');
    const nodes = await json<PodList>(['get', 'nodes']);
    expect(nodes.items.length).toBeGreaterThanOrEqual(3);
  });

  it('schedules a Deployment whose pods turn Running/Ready with pod IPs, and EndpointSlices follow', async () => {
    await cluster.kubectlOk(
      ['-n', ns, 'apply', '-f', '-'],
      `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: example.invalid/web:1
          ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http, name: http}]
`,
    );
    const pods = await waitFor(
      '3 ready web pods',
      async () => {
        const ready = readyPods(await json<PodList>(['-n', ns, 'get', 'pods', '-l', 'app=web']));
        return ready.length === 3 ? ready : undefined;
      },
      90_000,
    );
    expect(pods.every((p) => p.metadata.ownerReferences?.[0]?.kind === 'ReplicaSet')).toBe(true);
    await cluster.kubectlOk(['-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=60s']);
    const ips = await waitFor(
      'EndpointSlice with 3 ready endpoints',
      async () => {
        const slices = await json<{
          items: {
            endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[];
          }[];
        }>(['-n', ns, 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=web']);
        const ready = slices.items
          .flatMap((s) => s.endpoints ?? [])
          .filter((e) => e.conditions?.ready)
          .flatMap((e) => e.addresses);
        return ready.length === 3 ? ready : undefined;
      },
      60_000,
    );
    expect(new Set(ips)).toEqual(new Set(pods.map((p) => p.status.podIP)));
  });

  it('runs a StatefulSet to Ready', async () => {
    await cluster.kubectlOk(
      ['-n', ns, 'apply', '-f', '-'],
      `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: example.invalid/db:1}]
`,
    );
    await waitFor(
      'statefulset readyReplicas=2',
      async () => {
        const sts = await json<{ status: { readyReplicas?: number } }>([
          '-n',
          ns,
          'get',
          'statefulset',
          'db',
        ]);
        return sts.status.readyReplicas === 2;
      },
      90_000,
    );
    const pods = readyPods(await json<PodList>(['-n', ns, 'get', 'pods', '-l', 'app=db']));
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(['db-0', 'db-1']);
  });

  it('garbage-collects owned objects', async () => {
    const owner = await json<{ metadata: { uid: string } }>([
      '-n',
      ns,
      'create',
      'configmap',
      'owner',
    ]);
    await cluster.kubectlOk(
      ['-n', ns, 'apply', '-f', '-'],
      `
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
  ownerReferences:
    - {apiVersion: v1, kind: ConfigMap, name: owner, uid: ${owner.metadata.uid}}
data: {a: b}
`,
    );
    await cluster.kubectlOk(['-n', ns, 'delete', 'configmap', 'owner']);
    await waitFor(
      'owned configmap to be garbage-collected',
      async () => {
        const r = await cluster.kubectl(['-n', ns, 'get', 'configmap', 'owned']);
        return r.code !== 0 && r.stderr.includes('NotFound');
      },
      60_000,
    );
  });

  it('serves a CRD with status and scale subresources', async () => {
    const group = 'smoke.socketfleet.test';
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.${group}}
spec:
  group: ${group}
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
        scale:
          specReplicasPath: .spec.replicas
          statusReplicasPath: .status.replicas
          labelSelectorPath: .status.selector
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                replicas: {type: integer, minimum: 0}
            status:
              type: object
              properties:
                replicas: {type: integer}
                selector: {type: string}
`,
    );
    await cluster.kubectlOk([
      'wait',
      '--for=condition=Established',
      `crd/widgets.${group}`,
      '--timeout=60s',
    ]);
    await waitFor('widget apply', async () => {
      const r = await cluster.kubectl(
        ['-n', ns, 'apply', '-f', '-'],
        `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"replicas":1}}`,
      );
      return r.code === 0;
    });
    const bad = await cluster.kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"bad"},"spec":{"replicas":-1}}`,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.replicas');
    await cluster.kubectlOk(['-n', ns, 'scale', `widget/w`, '--replicas=4']);
    await cluster.kubectlOk([
      '-n',
      ns,
      'patch',
      'widget',
      'w',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"replicas":4,"selector":"app=w"}}',
    ]);
    const scale = JSON.parse(
      await cluster.kubectlOk([
        'get',
        '--raw',
        `/apis/${group}/v1/namespaces/${ns}/widgets/w/scale`,
      ]),
    ) as { spec: { replicas: number }; status: { replicas: number } };
    expect(scale.spec.replicas).toBe(4);
    expect(scale.status.replicas).toBe(4);
  });

  it('records write requests in the audit log', async () => {
    const since = new Date(Date.now() - 1000);
    await cluster.kubectlOk(['-n', ns, 'create', 'configmap', 'audited']);
    const events = await waitFor('audit event for the configmap create', async () => {
      const evs = await readAuditEvents(cluster.auditLogPath, { since });
      const mine = evs.filter(
        (e) =>
          e.verb === 'create' && e.objectRef?.name === 'audited' && e.objectRef.namespace === ns,
      );
      return mine.length > 0 ? evs : undefined;
    });
    expect(events.every((e) => !['get', 'list', 'watch'].includes(e.verb))).toBe(true);
  });

  it('gives a process its own ServiceAccount identity, with RBAC enforced and audited', async () => {
    const kubeconfig = await cluster.serviceAccountKubeconfig(ns, 'smoke-operator');
    const asSa = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      run(`${cluster.binDir}/kubectl`, ['--kubeconfig', kubeconfig, ...args]);
    const denied = await asSa(['-n', ns, 'create', 'configmap', 'by-sa']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('forbidden');
    await cluster.kubectlOk([
      '-n',
      ns,
      'create',
      'rolebinding',
      'smoke-operator-edit',
      '--clusterrole=edit',
      `--serviceaccount=${ns}:smoke-operator`,
    ]);
    const since = new Date(Date.now() - 1000);
    await waitFor('RBAC to allow the ServiceAccount', async () => {
      const r = await asSa(['-n', ns, 'create', 'configmap', 'by-sa']);
      return r.code === 0;
    });
    const user = `system:serviceaccount:${ns}:smoke-operator`;
    await waitFor('audit event of the ServiceAccount', async () => {
      const evs = await readAuditEvents(cluster.auditLogPath, { since, user });
      return evs.some((e) => e.verb === 'create' && e.objectRef?.name === 'by-sa');
    });
  });
});
