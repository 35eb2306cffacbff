// The operator end to end on a real control plane (kube-apiserver, controller-manager, scheduler,
// etcd; kwok fakes the nodes): the generated CRD, examples/full.yaml, scaling, shard changes,
// API-side validation, a Degraded cluster beside a healthy one, crash + restart, zero idle
// writes, and garbage collection. The operator runs as a real process with a kubeconfig.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { buildDesired, deriveRedisPasswords } from '../../operator/desired/index.js';
import { serverSelector } from '../../operator/desired/labels.js';
import { resourceNames } from '../../operator/desired/names.js';
import { readAuditEvents, startCluster, waitFor, type Cluster } from '../cluster/harness.js';
import { applyYaml, condition, find, getJson, list, type Obj } from './support/kube.js';
import {
  nonLeaseWrites,
  OPERATOR_KEY,
  startOperator,
  type OperatorProcess,
} from './support/operator-process.js';
import { createNamespace, installCrd, repo } from './support/setup.js';

const ns = `e2e-op-${process.pid}`;
const lease = `socketfleet-e2e-${process.pid}`;
const NAME = 'chat';
const names = resourceNames(NAME);
const INSTANCE = `app.kubernetes.io/instance=${NAME}`;
const IDLE_SECONDS = Number(process.env.SOCKETFLEET_E2E_IDLE_SECONDS ?? 60);
/** The kinds the operator creates for a cluster (EndpointSlices and ReplicaSets belong to Kubernetes). */
const OWNED = [
  'deployments',
  'statefulsets',
  'services',
  'configmaps',
  'secrets',
  'poddisruptionbudgets',
  'networkpolicies',
  'serviceaccounts',
  'roles',
  'rolebindings',
];

let cluster: Cluster;
let operator: OperatorProcess | undefined;
let example: Record<string, unknown>;

function operatorArgs(): string[] {
  return ['--namespace', ns, '--lease-name', lease, '--leader-election-namespace', ns];
}

async function rtc(name = NAME): Promise<Obj | undefined> {
  return find(cluster, ns, 'realtimecluster', name);
}

/** `kubectl patch` of an object in the test namespace, as a user would make it. */
async function patch(
  kind: string,
  name: string,
  type: 'merge' | 'json',
  body: unknown,
): Promise<void> {
  await cluster.kubectlOk([
    '-n',
    ns,
    'patch',
    kind,
    name,
    `--type=${type}`,
    '-p',
    JSON.stringify(body),
  ]);
}

/** Waits until the operator reports Ready for the current generation and returns the object. */
async function waitReady(what: string, extra: (o: Obj) => boolean = () => true): Promise<Obj> {
  return waitFor(
    what,
    async () => {
      const o = await rtc();
      if (!o) return undefined;
      const ready = condition(o, 'Ready');
      const ok =
        o.status?.observedGeneration === o.metadata.generation &&
        ready?.status === 'True' &&
        ready.observedGeneration === o.metadata.generation &&
        extra(o);
      return ok ? o : undefined;
    },
    120_000,
  );
}

/** kind/name of every object the operator owns for the cluster, per the live API. */
async function ownedObjects(uid: string): Promise<string[]> {
  const found: string[] = [];
  for (const kind of OWNED) {
    for (const o of await list(cluster, ns, kind, INSTANCE)) {
      const ref = o.metadata.ownerReferences?.find((r) => r.uid === uid);
      if (ref?.controller && ref.kind === 'RealtimeCluster')
        found.push(`${o.kind}/${o.metadata.name}`);
    }
  }
  return found.sort();
}

/** kind/name of what buildDesired wants for the live spec, plus the generated Secrets. */
function expectedObjects(live: Obj): string[] {
  const parsed = parseRealtimeCluster(live);
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const desired = buildDesired(parsed.cluster);
  return [
    ...desired.objects.map((o) => `${o.kind}/${o.metadata.name}`),
    `Secret/${names.redisAuthSecret}`,
    ...(parsed.cluster.spec.auth.mode === 'jwt' ? [`Secret/${names.clientAuthSecret}`] : []),
  ].sort();
}

/** The Redis Cluster seeds in the servers' config file, as host:port. */
async function serverConfigNodes(): Promise<string[]> {
  const cm = await find(cluster, ns, 'configmap', names.serverConfig);
  const file = Object.values(cm?.data ?? {})[0] ?? '{}';
  const config = JSON.parse(file) as { redis?: { nodes?: { host: string; port: number }[] } };
  return (config.redis?.nodes ?? []).map((s) => `${s.host}:${s.port}`);
}

function failureContext(): string {
  return operator ? `\n--- operator output (tail) ---\n${operator.output().slice(-4000)}` : '';
}

describe('socketfleet operator on a real control plane', () => {
  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster);
    await createNamespace(cluster, ns);
    // examples/full.yaml schedules onto a dedicated node pool with a PriorityClass; give the
    // fake nodes that label and create the class, as a platform team would.
    await cluster.kubectlOk(['label', 'node', '--all', 'workload=realtime', '--overwrite']);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      'apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: realtime-critical}\nvalue: 1000\n',
    );
    example = parse(readFileSync(join(repo, 'examples/full.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    (example.metadata as Record<string, unknown>).namespace = ns;
    operator = await startOperator(cluster.kubeconfigPath, operatorArgs());
  });

  afterAll(async () => {
    await operator?.stop();
    if (cluster) {
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await cluster.stop();
    }
  });

  it('creates every owned object with owner references and reaches Ready with the right status', async () => {
    await applyYaml(cluster, ns, stringify(example));
    const live = await waitReady('chat Ready', (o) => o.status?.readyReplicas === 4).catch(
      (e: Error) => {
        throw new Error(e.message + failureContext());
      },
    );
    expect(live.status).toMatchObject({
      observedGeneration: live.metadata.generation,
      replicas: 4,
      readyReplicas: 4,
      shards: 3,
      readyShards: 3,
      endpoint: `${names.gatewayService}.${ns}.svc:80`,
    });
    const parsed = parseRealtimeCluster(live);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(live.status?.selector).toBe(serverSelector(parsed.cluster));
    for (const type of ['Progressing', 'Degraded']) {
      expect(condition(live, type)).toMatchObject({ status: 'False' });
    }

    expect(await ownedObjects(live.metadata.uid)).toEqual(expectedObjects(live));

    // 4 servers + 3 shards x (master + replica) + 3 gateways, scheduled by the real scheduler
    // and made Ready by kwok.
    const pods = await list(cluster, ns, 'pods', INSTANCE);
    const ready = pods.filter((p) =>
      (p.status?.conditions as { type: string; status: string }[] | undefined)?.some(
        (c) => c.type === 'Ready' && c.status === 'True',
      ),
    );
    expect(ready.length).toBe(4 + 3 * 2 + 3);

    // The gateway follows the server endpoints through its own sidecar, whose account may read
    // EndpointSlices in this namespace and nothing else; the operator's ConfigMap holds none.
    const role = (await find(cluster, ns, 'role', names.gatewaySync)) as unknown as {
      rules: unknown[];
    };
    expect(role.rules).toEqual([
      {
        apiGroups: ['discovery.k8s.io'],
        resources: ['endpointslices'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    expect(await find(cluster, ns, 'rolebinding', names.gatewaySync)).toBeDefined();
    const gatewayConf = Object.values(
      (await find(cluster, ns, 'configmap', names.gatewayConfig))?.data ?? {},
    ).join('\n');
    expect(gatewayConf).toContain('include /tmp/nginx/upstreams.conf;');

    // The Redis passwords exist once, derived from the operator key and the cluster's UID, and
    // never reach the operator's output.
    const secret = await find(cluster, ns, 'secret', names.redisAuthSecret);
    const uid = (await rtc())?.metadata.uid ?? '';
    const passwords = deriveRedisPasswords(OPERATOR_KEY, uid);
    const password = Buffer.from(secret?.data?.['server-password'] ?? '', 'base64').toString();
    expect(password).toBe(passwords.server);
    for (const pw of Object.values(passwords)) expect(operator!.output()).not.toContain(pw);

    const events = await list(cluster, ns, 'events.events.k8s.io');
    const ours = events.filter(
      (e) => (e as unknown as { regarding?: { name?: string } }).regarding?.name === NAME,
    );
    expect(ours.map((e) => (e as unknown as { reason: string }).reason)).toEqual(
      expect.arrayContaining(['Applied', 'Ready']),
    );
  });

  it('follows kubectl scale rtc/chat --replicas 5', async () => {
    await cluster.kubectlOk(['-n', ns, 'scale', `rtc/${NAME}`, '--replicas', '5']);
    const live = await waitReady('5 ready replicas', (o) => o.status?.readyReplicas === 5);
    expect(live.status).toMatchObject({ replicas: 5, readyReplicas: 5 });
    const deploy = await find(cluster, ns, 'deployment', names.server);
    expect(deploy?.spec?.replicas).toBe(5);
    const scale = JSON.parse(
      await cluster.kubectlOk([
        'get',
        '--raw',
        `/apis/socketfleet.dev/v1alpha1/namespaces/${ns}/realtimeclusters/${NAME}/scale`,
      ]),
    ) as { spec: { replicas: number }; status: { replicas: number; selector: string } };
    expect(scale.spec.replicas).toBe(5);
    expect(scale.status.replicas).toBe(5);
  });

  it('follows spec.redis.shards 2 -> 3 -> 2: objects, the servers shard map and status', async () => {
    const shardHosts = (n: number): string[] =>
      Array.from({ length: n }, (_, i) => `${names.redisShard(i)}.${ns}.svc:6379`);
    for (const shards of [2, 3, 2]) {
      await patch('rtc', NAME, 'merge', { spec: { redis: { shards } } });
      const live = await waitReady(
        `${shards} shards ready`,
        (o) => o.status?.shards === shards && o.status.readyShards === shards,
      );
      // Every pod of every shard, master and replicas, by its stable DNS name.
      expect(await serverConfigNodes()).toEqual(
        Array.from({ length: shards }, (_, i) =>
          [0, 1].map((ord) => `${names.redisShard(i)}-${ord}.${shardHosts(shards)[i]}`),
        ).flat(),
      );
      await waitFor(`exactly ${shards} shard StatefulSets`, async () => {
        const sets = (
          await list(cluster, ns, 'statefulsets', `${INSTANCE},app.kubernetes.io/component=redis`)
        ).filter((s) => !s.metadata.deletionTimestamp);
        return (
          sets
            .map((s) => s.metadata.name)
            .sort()
            .join() ===
          shardHosts(shards)
            .map((h) => h.split('.')[0])
            .sort()
            .join()
        );
      });
      expect(await find(cluster, ns, 'service', names.redisShard(2))).toSatisfy(
        (svc: Obj | undefined) =>
          shards === 3 ? svc !== undefined : svc === undefined || !!svc.metadata.deletionTimestamp,
      );
      expect(await ownedObjects(live.metadata.uid)).toEqual(expectedObjects(live));
    }
  });

  it('refuses invalid manifests at the API server with the field named', async () => {
    const bad = (spec: Record<string, unknown>, name: string): string =>
      stringify({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name },
        spec,
      });
    const cases: [string, Record<string, unknown>, string][] = [
      ['negative-shards', { redis: { shards: -1 } }, 'spec.redis.shards'],
      ['unknown-parser', { socketio: { parser: 'protobuf' } }, 'spec.socketio.parser'],
      ['ping-string', { socketio: { pingTimeoutMs: 'soon' } }, 'spec.socketio.pingTimeoutMs'],
      [
        'drain-too-long',
        { terminationGracePeriodSeconds: 10, socketio: { drainSeconds: 60 } },
        'spec',
      ],
    ];
    for (const [name, spec, field] of cases) {
      const r = await cluster.kubectl(['-n', ns, 'apply', '-f', '-'], bad(spec, name));
      expect(r.code, name).not.toBe(0);
      expect(r.stderr, name).toContain(field);
      expect(r.stderr, name).toMatch(/Invalid value|Unsupported value|must be|should be/);
      expect(await rtc(name)).toBeUndefined();
    }
  });

  it('reports Degraded for a spec the API accepts but the operator cannot build, and keeps serving others', async () => {
    const longName = 'a-cluster-name-that-is-far-too-long-for-derived-names';
    await applyYaml(
      cluster,
      ns,
      stringify({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name: longName },
        spec: {},
      }),
    );
    const degraded = await waitFor(
      'Degraded condition on the long-named cluster',
      async () => {
        const o = await rtc(longName);
        return condition(o, 'Degraded')?.status === 'True' ? o : undefined;
      },
      60_000,
    );
    expect(condition(degraded, 'Degraded')).toMatchObject({
      reason: 'InvalidSpec',
      message: 'metadata.name: must be at most 40 characters so derived names fit',
      observedGeneration: degraded.metadata.generation,
    });
    expect(condition(degraded, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(
      await list(cluster, ns, 'deployments', `app.kubernetes.io/instance=${longName}`),
    ).toEqual([]);

    // Meanwhile the healthy cluster keeps being reconciled.
    await cluster.kubectlOk(['-n', ns, 'scale', `rtc/${NAME}`, '--replicas', '3']);
    await waitReady(
      'chat scaled to 3 beside the degraded cluster',
      (o) => o.status?.readyReplicas === 3,
    );

    // A terminal error is not retried in a loop: nothing changes while we wait.
    const invalidBefore = await operator!.counter(
      'socketfleet_operator_reconciles_total',
      (l) => l.result === 'invalid',
    );
    await new Promise((r) => setTimeout(r, 5000));
    const invalidAfter = await operator!.counter(
      'socketfleet_operator_reconciles_total',
      (l) => l.result === 'invalid',
    );
    expect(invalidAfter).toBe(invalidBefore);
    expect(
      await operator!.counter(
        'socketfleet_operator_reconcile_errors_total',
        (l) => l.reason === 'InvalidSpec',
      ),
    ).toBeGreaterThanOrEqual(1);

    await cluster.kubectlOk(['-n', ns, 'delete', 'rtc', longName]);
  });

  it('reports Degraded while the API server rejects an object, and recovers when the spec is fixed', async () => {
    // The schema allows any annotation key; the API server refuses this one on the gateway Service.
    await applyYaml(
      cluster,
      ns,
      stringify({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name: 'broken' },
        spec: { replicas: 1, gateway: { service: { annotations: { 'bad key!': 'x' } } } },
      }),
    );
    const degraded = await waitFor(
      'Degraded after repeated rejected applies',
      async () => {
        const o = await rtc('broken');
        return condition(o, 'Degraded')?.status === 'True' ? o : undefined;
      },
      60_000,
    );
    expect(condition(degraded, 'Degraded')?.reason).toBe('ApiInvalid');
    expect(condition(degraded, 'Degraded')?.message).toContain('metadata.annotations');
    expect(condition(degraded, 'Progressing')?.message).toBe('Retrying with backoff.');
    const warnings = (await list(cluster, ns, 'events.events.k8s.io')).filter((e) => {
      const ev = e as unknown as { regarding?: { name?: string }; reason?: string; type?: string };
      return (
        ev.regarding?.name === 'broken' && ev.reason === 'ReconcileFailed' && ev.type === 'Warning'
      );
    });
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(
      await operator!.counter(
        'socketfleet_operator_reconcile_errors_total',
        (l) => l.reason === 'ApiInvalid',
      ),
    ).toBeGreaterThanOrEqual(3);

    await patch('rtc', 'broken', 'json', [
      { op: 'remove', path: '/spec/gateway/service/annotations' },
    ]);
    const fixed = await waitFor(
      'broken to recover',
      async () => {
        const o = await rtc('broken');
        return condition(o, 'Ready')?.status === 'True' &&
          o?.status?.observedGeneration === o?.metadata.generation
          ? o
          : undefined;
      },
      120_000,
    );
    expect(condition(fixed, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    await cluster.kubectlOk(['-n', ns, 'delete', 'rtc', 'broken']);
  });

  it('reverts hand edits of a Deployment, a ConfigMap and a Service, and recreates a deleted ConfigMap', async () => {
    const want = (await rtc())?.spec?.replicas as number;
    await cluster.kubectlOk([
      '-n',
      ns,
      'scale',
      'deployment',
      names.server,
      '--replicas',
      String(want + 2),
    ]);
    await waitFor(
      'the operator to scale its Deployment back',
      async () => (await find(cluster, ns, 'deployment', names.server))?.spec?.replicas === want,
      60_000,
      200,
    );
    // The log line is written after the apply returns and reaches us through a pipe, so it may
    // arrive a moment after the Deployment is already back.
    await waitFor(
      'the operator to log that it reverted the manual change',
      () =>
        Promise.resolve(
          operator!
            .logs()
            .some((l) =>
              JSON.stringify(l.actions ?? '').includes(
                `reverted a manual change to Deployment/${names.server}`,
              ),
            ),
        ),
      10_000,
      100,
    );

    const before = await find(cluster, ns, 'configmap', names.serverConfig);
    await cluster.kubectlOk(['-n', ns, 'delete', 'configmap', names.serverConfig]);
    const after = await waitFor(
      'the server ConfigMap to come back',
      async () => {
        const cm = await find(cluster, ns, 'configmap', names.serverConfig);
        return cm && cm.metadata.uid !== before?.metadata.uid ? cm : undefined;
      },
      60_000,
    );
    expect(after.data).toEqual(before?.data);

    // Kinds without a generation: an edited ConfigMap key and a Service's target port are put
    // back too. (Not the port number itself: it is the key of its list entry, so an apply adds
    // our entry back beside the edited one, and the API server refuses two ports of one name;
    // the cluster then shows Degraded with that message.)
    const key = Object.keys(after.data ?? {})[0]!;
    await patch('configmap', names.serverConfig, 'merge', { data: { [key]: 'edited by hand' } });
    const service = await find(cluster, ns, 'service', names.serverService);
    const ports = (service?.spec as { ports: { targetPort: number | string }[] }).ports;
    await patch('service', names.serverService, 'json', [
      { op: 'replace', path: '/spec/ports/0/targetPort', value: 4444 },
    ]);
    await waitFor(
      'the operator to put the ConfigMap key and the Service target port back',
      async () => {
        const cm = await find(cluster, ns, 'configmap', names.serverConfig);
        const svc = await find(cluster, ns, 'service', names.serverService);
        const livePorts = (svc?.spec as { ports: typeof ports } | undefined)?.ports;
        return (
          cm?.data?.[key] === after.data?.[key] &&
          livePorts?.[0]?.targetPort === ports[0]!.targetPort
        );
      },
      60_000,
      200,
    );
    await waitReady('chat Ready after the hand edits', (o) => o.status?.readyReplicas === want);
  });

  it('converges after a crash mid-change, with no duplicate objects and the same Redis password', async () => {
    const before = await rtc();
    const secretBefore = await find(cluster, ns, 'secret', names.redisAuthSecret);
    await patch('rtc', NAME, 'merge', {
      spec: { replicas: 6, redis: { shards: 4 }, gateway: { replicas: 2 } },
    });
    // Kill as soon as the operator has started on the change, so part of it is done and part is not.
    await waitFor(
      'the operator to start applying',
      async () => (await find(cluster, ns, 'statefulset', names.redisShard(2))) !== undefined,
      60_000,
      50,
    );
    await operator!.kill();
    operator = await startOperator(cluster.kubeconfigPath, operatorArgs());
    // The crashed process never released the Lease: the new one takes over once it expires.
    const live = await waitReady(
      'converged after restart',
      (o) => o.status?.readyReplicas === 6 && o.status.readyShards === 4,
    ).catch((e: Error) => {
      throw new Error(e.message + failureContext());
    });
    expect(live.metadata.uid).toBe(before?.metadata.uid);
    expect(await ownedObjects(live.metadata.uid)).toEqual(expectedObjects(live));
    const pods = await list(cluster, ns, 'pods', INSTANCE);
    const byComponent = (c: string): number =>
      pods.filter(
        (p) =>
          p.metadata.labels?.['app.kubernetes.io/component'] === c && !p.metadata.deletionTimestamp,
      ).length;
    await waitFor('no surplus pods', async () => {
      const now = await list(cluster, ns, 'pods', INSTANCE);
      const live = now.filter((p) => !p.metadata.deletionTimestamp);
      return live.length === 6 + 4 * 2 + 2;
    });
    expect(byComponent('redis')).toBe(4 * 2);
    const secrets = await list(cluster, ns, 'secrets', INSTANCE);
    expect(secrets.map((s) => s.metadata.name).sort()).toEqual(
      [names.clientAuthSecret, names.redisAuthSecret].sort(),
    );
    const secretAfter = await find(cluster, ns, 'secret', names.redisAuthSecret);
    expect(secretAfter?.metadata.uid).toBe(secretBefore?.metadata.uid);
    expect(secretAfter?.data).toEqual(secretBefore?.data);
  });

  it(`makes zero write requests while idle (${IDLE_SECONDS}s), even when it reconciles`, async () => {
    await waitReady('converged before the idle window');
    // Let in-flight rollouts and their EndpointSlice churn settle.
    let last = -1;
    await waitFor(
      'write counter to stop moving',
      async () => {
        const n = await nonLeaseWrites(operator!);
        const settled = n === last;
        last = n;
        return settled;
      },
      120_000,
      5000,
    );
    await waitFor('no pod in flight', async () => {
      const pods = await list(cluster, ns, 'pods', INSTANCE);
      return pods.length === 6 + 4 * 2 + 2 && pods.every((p) => !p.metadata.deletionTimestamp);
    });
    const withoutLeases = (w: Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.entries(w).filter(([k]) => !k.endsWith(' Lease')));
    const writesBefore = withoutLeases(await operator!.writes());
    const logsBefore = operator!.logs().length;
    const reconcilesBefore = await operator!.counter('socketfleet_operator_reconciles_total');
    const since = new Date();
    // Wake the reconciler without changing anything it owns: a label on the cluster and one on a
    // Deployment (a label, not an annotation: annotations bump a Deployment's generation).
    await cluster.kubectlOk([
      '-n',
      ns,
      'label',
      'rtc',
      NAME,
      `e2e-touch=${Date.now()}`,
      '--overwrite',
    ]);
    await cluster.kubectlOk([
      '-n',
      ns,
      'label',
      'deployment',
      names.server,
      `e2e-touch=${Date.now()}`,
      '--overwrite',
    ]);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const reconcilesAfter = await operator!.counter('socketfleet_operator_reconciles_total');
    expect(reconcilesAfter).toBeGreaterThanOrEqual(reconcilesBefore + 2);
    const changes = operator!
      .logs()
      .slice(logsBefore)
      .filter((l) => l.msg === 'applied changes')
      .map((l) => JSON.stringify(l.actions));
    expect({ writes: withoutLeases(await operator!.writes()), changes }).toEqual({
      writes: writesBefore,
      changes: [],
    });
    // The API server agrees: no write from the operator's client except Lease renewals.
    const audit = await readAuditEvents(cluster.auditLogPath, { since });
    const ours = audit.filter((e) => e.userAgent?.startsWith('socketfleet-operator/'));
    // Lease renewals prove the audit log does record this client's writes.
    expect(ours.some((e) => e.objectRef?.resource === 'leases')).toBe(true);
    const writes = audit.filter(
      (e) => e.userAgent?.startsWith('socketfleet-operator/') && e.objectRef?.resource !== 'leases',
    );
    expect(writes.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
  });

  it('deleting the RealtimeCluster garbage-collects everything it owned', async () => {
    const live = await rtc();
    await cluster.kubectlOk(['-n', ns, 'delete', 'rtc', NAME, '--wait=true', '--timeout=60s']);
    await waitFor(
      'owned objects to be garbage-collected',
      async () => (await ownedObjects(live!.metadata.uid)).length === 0,
      120_000,
    );
    await waitFor(
      'pods to be gone',
      async () => (await list(cluster, ns, 'pods', INSTANCE)).length === 0,
      120_000,
    );
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await operator!.healthz()).toBe(200);
    expect(await operator!.readyz()).toBe(200);
    expect(await operator!.stop()).toBe(0);
    expect(operator!.logs().at(-1)).toMatchObject({ msg: 'operator stopped', exitCode: 0 });
    const leaseObj = await getJson<{ spec: { holderIdentity?: string } }>(cluster, [
      '-n',
      ns,
      'get',
      'lease',
      lease,
    ]);
    expect(leaseObj.spec.holderIdentity ?? '').toBe('');
    operator = undefined;
  });
});
