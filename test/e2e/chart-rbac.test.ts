// The chart's RBAC is sufficient and minimal, proven on the real API server:
// the operator runs locally with a kubeconfig that authenticates as the
// chart's ServiceAccount (a token from `kubectl create token`), so any
// permission the chart forgot fails the scenario. Then each rule of the
// ClusterRole (and the leader-election Role) is removed in turn, and a few
// single verbs, to show the operator breaks without it. The operator runs
// with the command line of the chart's Deployment, and its /healthz, /readyz
// and /metrics answer the chart's probe paths.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { KubeClient } from '../../operator/reconcile/kube-client.js';
import { RedisCaReader } from '../../operator/reconcile/redis-ca.js';
import { readAuditEvents, startCluster, type Cluster } from '../cluster/harness.js';
import { deriveRedisPassword, REDIS_SECRET_KEYS } from '../../operator/desired/redis-acl.js';
import { chartDir, ensureNodeEphemeralStorage, helm, repoRoot } from '../lint/tools.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

interface ScenarioResult {
  ok: boolean;
  /** Where it stopped: converged, or the step that failed. */
  stage: string;
  /** Operator log lines that report a 403 from the API server. */
  forbidden: string[];
}

const ns = `sf-rbac-${process.pid}`;
const app = `${ns}-app`;
const release = 'sfrbac';
const fullname = `${release}-socketfleet-operator`;
const leaseRole = `${fullname}-leader-election`;
const saUser = `system:serviceaccount:${ns}:${fullname}`;
const WRITE_VERBS = ['create', 'patch', 'update', 'delete'];
/** A denied rule shows up as a 403 in the operator's logs within seconds; a converge takes ~10-30 s. */
const SCENARIO_TIMEOUT_MS = 120_000;

let cluster: Cluster;
let workDir: string;
let saKubeconfig: string;
/** The chart's operator key, as the pod would see it mounted (written locally for the process). */
let operatorKey: Buffer;
let operatorKeyFile: string;
let clusterRules: Rule[];
let leaseRules: Rule[];
const running = new Set<ChildProcess>();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until fn is true; false on timeout (the caller decides what a timeout means). */
async function poll(fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
}

function describeRule(r: Rule): string {
  const group = r.apiGroups.map((g) => g || 'core').join(',');
  return `${group}/${r.resources.join(',')} [${r.verbs.join(',')}]`;
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json'])) as T;
}

/** A kubeconfig for the admin kubeconfig's API server, authenticating with a ServiceAccount token. */
async function serviceAccountKubeconfig(): Promise<string> {
  const token = (
    await cluster.kubectlOk(['-n', ns, 'create', 'token', fullname, '--duration=2h'])
  ).trim();
  const admin = parse(readFileSync(cluster.kubeconfigPath, 'utf8')) as {
    clusters: { cluster: Record<string, string> }[];
  };
  const server = admin.clusters[0]!.cluster;
  const file = join(workDir, 'operator-sa.kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: server }],
      users: [{ name: 'operator', user: { token } }],
      contexts: [{ name: 'operator', context: { cluster: 'test', user: 'operator' } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  return file;
}

interface Operator {
  lines: string[];
  /** The port of /healthz, /readyz and /metrics, once the operator logged it. */
  metricsPort(): number | undefined;
  forbidden(): string[];
  stop(): Promise<void>;
}

/**
 * The operator's command line exactly as the chart's Deployment has it (so a
 * flag the CLI does not know fails here, not in a crash-looping pod), except
 * the metrics port: 0 picks a free one on this shared machine.
 */
async function chartArgs(): Promise<string[]> {
  const deploy = await json<{
    spec: { template: { spec: { containers: { name: string; args: string[] }[] } } };
  }>(['-n', ns, 'get', 'deployment', fullname]);
  const container = deploy.spec.template.spec.containers.find((c) => c.name === 'operator');
  if (!container) throw new Error(`deployment/${fullname} has no operator container`);
  // The key file the chart mounts, at a local path: the process runs here, not in a pod.
  return container.args.map((a) =>
    a.startsWith('--metrics-port=')
      ? '--metrics-port=0'
      : a.startsWith('--operator-key-file=')
        ? `--operator-key-file=${operatorKeyFile}`
        : a,
  );
}

function startOperator(args: string[]): Operator {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'operator', 'cli', 'main.ts'),
      ...args,
      '--kubeconfig',
      saKubeconfig,
      // kwok's pods run no Redis for the operator to reach.
      '--redis-admin=false',
    ],
    // The Deployment's downward-API env: the Lease holder identity and namespace.
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POD_NAME: `chart-rbac-${process.pid}`, POD_NAMESPACE: ns },
    },
  );
  running.add(child);
  const lines: string[] = [];
  let partial = '';
  const onData = (d: string): void => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    lines,
    forbidden: () => lines.filter((l) => /\b403\b|forbidden/i.test(l)),
    metricsPort: () => {
      for (const l of lines) {
        const m = /"metricsPort":(\d+)/.exec(l);
        if (m) return Number(m[1]);
      }
      return undefined;
    },
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
    },
  };
}

interface RtcStatus {
  metadata: { generation: number };
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string }[];
  };
}

async function readyAtLatestGeneration(name: string): Promise<boolean> {
  const r = await cluster.kubectl(['-n', app, 'get', 'rtc', name, '-o', 'json']);
  if (r.code !== 0) return false;
  const rtc = JSON.parse(r.stdout) as RtcStatus;
  return (
    rtc.status?.observedGeneration === rtc.metadata.generation &&
    (rtc.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/** True once the operator has renewed the Lease it acquired at least once. */
async function leaseRenewed(): Promise<boolean> {
  const r = await cluster.kubectl(['-n', ns, 'get', 'lease', fullname, '-o', 'json']);
  if (r.code !== 0) return false;
  const spec = (JSON.parse(r.stdout) as { spec?: { acquireTime?: string; renewTime?: string } })
    .spec;
  if (!spec?.acquireTime || !spec.renewTime) return false;
  return Date.parse(spec.renewTime) > Date.parse(spec.acquireTime);
}

async function count(args: string[]): Promise<number> {
  return (await json<{ items: unknown[] }>(['-n', app, 'get', ...args])).items.length;
}

/**
 * The operator's whole job, so that every permission gets used: create a
 * cluster (2 shards, gateway, NetworkPolicies, Secret, events) and wait for
 * Ready; then scale shards in, disable NetworkPolicies and the gateway (every
 * kind of delete) and wait for Ready at the new generation.
 */
async function scenario(name: string, onCreated?: () => Promise<void>): Promise<ScenarioResult> {
  // Every run starts like a fresh install: the operator must create its Lease.
  await cluster.kubectlOk(['-n', ns, 'delete', 'lease', fullname, '--ignore-not-found']);
  const op = startOperator(await chartArgs());
  const failed = (stage: string): ScenarioResult => ({
    ok: false,
    stage,
    forbidden: op.forbidden(),
  });
  try {
    await cluster.kubectlOk(
      ['-n', app, 'apply', '-f', '-'],
      stringify({
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        metadata: { name },
        spec: { replicas: 1, redis: { shards: 2 }, gateway: { replicas: 1 } },
      }),
    );
    const created = await poll(
      async () => op.forbidden().length > 0 || (await readyAtLatestGeneration(name)),
      SCENARIO_TIMEOUT_MS,
    );
    if (op.forbidden().length > 0) return failed('create: forbidden');
    if (!created) return failed('create: not Ready in time');
    await onCreated?.();

    await cluster.kubectlOk([
      '-n',
      app,
      'patch',
      'rtc',
      name,
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: {
          redis: { shards: 1 },
          networkPolicy: { enabled: false },
          gateway: { mode: 'none' },
        },
      }),
    ]);
    const selector = `app.kubernetes.io/instance=${name}`;
    const shrunk = await poll(
      async () =>
        op.forbidden().length > 0 ||
        ((await readyAtLatestGeneration(name)) &&
          (await count(['statefulsets', '-l', selector])) === 1 &&
          (await count(['networkpolicies', '-l', selector])) === 0 &&
          (await count(['deployments', '-l', selector])) === 1),
      SCENARIO_TIMEOUT_MS,
    );
    if (op.forbidden().length > 0) return failed('scale-in: forbidden');
    if (!shrunk) return failed('scale-in: not converged in time');

    const events = await json<{
      items: { reportingController?: string; regarding?: { name?: string } }[];
    }>(['-n', app, 'get', 'events.events.k8s.io']);
    const recorded = events.items.some(
      (e) => e.regarding?.name === name && e.reportingController === 'socketfleet.dev/operator',
    );
    if (!recorded) return failed('events: none recorded');

    // The chart's probe paths, answered by the real operator.
    const port = op.metricsPort();
    if (port === undefined) return failed('probes: the operator never logged its metrics port');
    for (const path of ['/healthz', '/readyz']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      if (res.status !== 200) return failed(`probes: ${path} answered ${res.status}`);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (!/^socketfleet_operator_leader 1$/m.test(metrics)) {
      return failed('probes: /metrics does not report this process as the leader');
    }

    // A fast convergence can finish inside the first renew period (2 s), so
    // wait for one renewal: otherwise 'update' on the Lease would look unneeded.
    const renewed = await poll(
      async () => op.forbidden().length > 0 || (await leaseRenewed()),
      SCENARIO_TIMEOUT_MS,
    );
    if (op.forbidden().length > 0) return failed('lease renewal: forbidden');
    if (!renewed) return failed('lease renewal: renewTime never moved past acquireTime');
    return { ok: true, stage: 'converged', forbidden: [] };
  } finally {
    await op.stop();
    await cluster.kubectl(['-n', app, 'delete', 'rtc', name, '--ignore-not-found', '--wait=false']);
  }
}

/**
 * The Redis ACL Secret the operator created holds the passwords it can derive again from the
 * chart's key and the cluster's UID (so it never needs to read them): checked as an admin.
 */
async function checkAclSecret(name: string): Promise<void> {
  const uid = (await json<{ metadata: { uid: string } }>(['-n', app, 'get', 'rtc', name])).metadata
    .uid;
  let acl: { data: Record<string, string> } | undefined;
  await poll(async () => {
    const r = await cluster.kubectl([
      '-n',
      app,
      'get',
      'secret',
      `${name}-redis-acl`,
      '-o',
      'json',
    ]);
    if (r.code === 0) acl = JSON.parse(r.stdout) as { data: Record<string, string> };
    return acl !== undefined;
  }, 30_000);
  if (!acl) throw new Error(`Secret ${name}-redis-acl was never created`);
  const data = acl.data;
  const plain = (k: string): string => Buffer.from(data[k] ?? '', 'base64').toString('utf8');
  expect(plain(REDIS_SECRET_KEYS.serverPassword)).toBe(
    deriveRedisPassword(operatorKey, uid, 'server'),
  );
  expect(plain(REDIS_SECRET_KEYS.replicationPassword)).toBe(
    deriveRedisPassword(operatorKey, uid, 'replication'),
  );
  // The operator's own password is not in it, only its hash (for the Redis nodes).
  expect(Object.values(data).map((v) => Buffer.from(v, 'base64').toString())).not.toContain(
    deriveRedisPassword(operatorKey, uid, 'operator'),
  );
}

async function saCan(verb: string, resource: string, namespace: string): Promise<boolean> {
  const [res, sub] = resource.split('/');
  const args = ['auth', 'can-i', verb, res!, `--as=${saUser}`, '-n', namespace];
  if (sub) args.push(`--subresource=${sub}`);
  return (await cluster.kubectl(args)).stdout.trim() === 'yes';
}

function qualified(group: string, resource: string): string {
  const [res, sub] = resource.split('/');
  return `${res}${group ? `.${group}` : ''}${sub ? `/${sub}` : ''}`;
}

/** Replaces a role's rules and waits until the authorizer sees the change. */
async function setRules(
  kind: 'clusterrole' | 'role',
  name: string,
  rules: Rule[],
  probe: { verb: string; resource: string; namespace: string; allowed: boolean },
): Promise<void> {
  await cluster.kubectlOk([
    ...(kind === 'role' ? ['-n', ns] : []),
    'patch',
    kind,
    name,
    '--type=merge',
    '-p',
    JSON.stringify({ rules }),
  ]);
  const seen = await poll(
    async () => (await saCan(probe.verb, probe.resource, probe.namespace)) === probe.allowed,
    30_000,
  );
  if (!seen) throw new Error(`RBAC change on ${kind}/${name} not visible after 30s`);
}

function probeFor(rule: Rule, namespace: string, allowed: boolean, verb = rule.verbs[0]!) {
  return { verb, resource: qualified(rule.apiGroups[0]!, rule.resources[0]!), namespace, allowed };
}

/**
 * The autopilot sets spec.replicas through the scale subresource from the metrics of running
 * server pods; kwok's pods serve none (--redis-admin=false turns the loop off here). The
 * autoscale e2e test (test/e2e/autoscale-scale.test.ts) patches /scale on the real API server.
 */
function onlyWithRunningPods(group: string, resource: string): boolean {
  return group === 'socketfleet.dev' && resource === 'realtimeclusters/scale';
}

describe('chart RBAC, proven with the operator running as the chart ServiceAccount', () => {
  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'socketfleet-rbac-'));
    cluster = await startCluster();
    await ensureNodeEphemeralStorage(cluster);
    for (const n of [ns, app]) await cluster.kubectlOk(['create', 'namespace', n]);
    const install = await helm(
      ['install', release, chartDir, '-n', ns, '--wait', '--timeout', '2m'],
      cluster.env,
    );
    if (install.code !== 0) throw new Error(`helm install failed: ${install.stderr}`);
    saKubeconfig = await serviceAccountKubeconfig();
    // The key the chart generated, read as an admin (the operator pod gets it as a mounted file).
    const keySecret = await json<{ data: { key: string } }>([
      '-n',
      ns,
      'get',
      'secret',
      `${fullname}-key`,
    ]);
    operatorKey = Buffer.from(keySecret.data.key, 'base64');
    operatorKeyFile = join(workDir, 'operator-key');
    writeFileSync(operatorKeyFile, operatorKey, { mode: 0o600 });
    clusterRules = (await json<{ rules: Rule[] }>(['get', 'clusterrole', fullname])).rules;
    leaseRules = (await json<{ rules: Rule[] }>(['-n', ns, 'get', 'role', leaseRole])).rules;
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    if (cluster) {
      await cluster.kubectl(['-n', app, 'delete', 'rtc', '--all', '--wait=false']);
      await helm(['uninstall', release, '-n', ns, '--wait'], cluster.env);
      for (const n of [app, ns]) await cluster.kubectl(['delete', 'namespace', n, '--wait=false']);
      await cluster.stop();
    }
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('authenticates as the chart ServiceAccount, not as an admin', async () => {
    const r = await cluster.kubectlOk([
      '--kubeconfig',
      saKubeconfig,
      'auth',
      'whoami',
      '-o',
      'json',
    ]);
    const who = JSON.parse(r) as { status: { userInfo: { username: string } } };
    expect(who.status.userInfo.username).toBe(saUser);
    const denied = await cluster.kubectl(['--kubeconfig', saKubeconfig, 'get', 'nodes']);
    expect(denied.stderr).toContain('forbidden');
  });

  // Issue 16 item 5: no get, list or watch on Secrets at all. The operator creates its Secrets
  // (create only, "already exists" is success) and derives the Redis passwords again from the
  // operator key, which the kubelet mounts into its pod; it never reads a Secret back.
  it('cannot get, list or watch Secrets in any namespace, so it cannot read a Secret it did not create', async () => {
    await cluster.kubectlOk([
      '-n',
      app,
      'create',
      'secret',
      'generic',
      'not-the-operators',
      '--from-literal=token=do-not-read',
    ]);
    const asOperator = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
      cluster.kubectl(['--kubeconfig', saKubeconfig, ...args]);
    for (const args of [
      ['-n', app, 'get', 'secret', 'not-the-operators', '-o', 'yaml'],
      ['-n', app, 'get', 'secrets'],
      ['get', 'secrets', '-A'],
      // Not even the operator key, which its own pod mounts as a file.
      ['-n', ns, 'get', 'secret', `${fullname}-key`, '-o', 'yaml'],
    ]) {
      const r = await asOperator(args);
      expect(r.stdout, args.join(' ')).not.toContain('do-not-read');
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toContain('forbidden');
    }
    for (const verb of ['get', 'list', 'watch']) {
      for (const where of [app, ns, 'default', 'kube-system']) {
        expect(await saCan(verb, 'secrets', where), `${verb} secrets in ${where}`).toBe(false);
      }
      // Every namespace at once (kubectl auth can-i --all-namespaces).
      const all = await cluster.kubectl([
        'auth',
        'can-i',
        verb,
        'secrets',
        `--as=${saUser}`,
        '--all-namespaces',
      ]);
      expect(all.stdout.trim(), `${verb} secrets -A`).toBe('no');
    }
    expect(await saCan('create', 'secrets', app)).toBe(true);
  });

  // spec.redis.tls: the operator checks Redis node certificates against a CA bundle that the user
  // publishes as a ConfigMap, read by a name-filtered list, which the ConfigMap rule already
  // grants: no new permission, no get, and still no Secret.
  it("reads spec.redis.tls's CA bundle ConfigMap as the chart ServiceAccount, with list only", async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
    await cluster.kubectlOk(
      ['-n', app, 'apply', '-f', '-'],
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'demo-redis-ca', namespace: app },
        data: { 'ca.crt': pem },
      }),
    );
    const kc = new KubeConfig();
    kc.loadFromFile(saKubeconfig);
    const client = await KubeClient.create(kc);
    try {
      expect(await new RedisCaReader(client).read(app, 'demo-redis-ca', 'ca.crt')).toEqual({
        ok: true,
        pem,
      });
      const missing = await new RedisCaReader(client).read(app, 'no-such-ca', 'ca.crt');
      expect(missing).toEqual({
        ok: false,
        problem: `spec.redis.tls.caConfigMap: ConfigMap ${app}/no-such-ca does not exist; the operator cannot verify the Redis nodes without it.`,
      });
    } finally {
      client.close();
    }
    expect(await saCan('get', 'configmaps', app)).toBe(false);
  });

  it('converges (create, Ready, scale-in, Ready) and uses every write it is granted', async () => {
    const since = new Date(Date.now() - 1000);
    let secretChecked = false;
    const result = await scenario('full', async () => {
      await checkAclSecret('full');
      secretChecked = true;
    });
    expect(secretChecked).toBe(true);
    expect(result).toEqual({ ok: true, stage: 'converged', forbidden: [] });

    const audit = await readAuditEvents(cluster.auditLogPath, { since, user: saUser });
    const denied = audit.filter((e) => e.responseStatus?.code === 403);
    expect(denied.map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    // Reads are not audited; every granted write must show up. Server-side
    // apply that creates an object is audited as patch with 201 Created.
    const used = (verb: string, group: string, resource: string): boolean => {
      const [res, sub] = resource.split('/');
      return audit.some((e) => {
        const o = e.objectRef ?? {};
        if (
          (o.apiGroup ?? '') !== group ||
          o.resource !== res ||
          (o.subresource ?? '') !== (sub ?? '')
        ) {
          return false;
        }
        if (verb === 'create')
          return e.verb === 'create' || (e.verb === 'patch' && e.responseStatus?.code === 201);
        return e.verb === verb;
      });
    };
    // Checked by admission (OwnerReferencesPermissionEnforcement) when an owner reference sets
    // blockOwnerDeletion, never sent as a request: the rule-removal test below proves it.
    const admissionOnly = new Set(['update socketfleet.dev/realtimeclusters/finalizers']);
    const unused: string[] = [];
    for (const rule of [...clusterRules, ...leaseRules]) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs.filter((v) => WRITE_VERBS.includes(v))) {
            if (admissionOnly.has(`${verb} ${group}/${resource}`)) continue;
            // Deleting a Redis pod rolls a Redis template change: that needs Redis pods that
            // run (the real-node suite), not kwok's, so --redis-admin=false here.
            if (verb === 'delete' && group === '' && resource === 'pods') continue;
            if (onlyWithRunningPods(group, resource)) continue;
            if (!used(verb, group, resource)) unused.push(`${verb} ${qualified(group, resource)}`);
          }
        }
      }
    }
    expect(unused).toEqual([]);
  });

  it('breaks without any single rule of the ClusterRole or the leader-election Role', async () => {
    const report: { rule: string; broke: boolean; evidence: string }[] = [];
    const cases: {
      kind: 'clusterrole' | 'role';
      name: string;
      rules: Rule[];
      index: number;
      namespace: string;
    }[] = [
      ...clusterRules.map((_, index) => ({
        kind: 'clusterrole' as const,
        name: fullname,
        rules: clusterRules,
        index,
        namespace: app,
      })),
      ...leaseRules.map((_, index) => ({
        kind: 'role' as const,
        name: leaseRole,
        rules: leaseRules,
        index,
        namespace: ns,
      })),
    ];
    let skipped = 0;
    for (const c of cases) {
      const removed = c.rules[c.index]!;
      if (removed.apiGroups.some((g) => removed.resources.some((r) => onlyWithRunningPods(g, r)))) {
        skipped++;
        continue;
      }
      const rest = c.rules.filter((_, i) => i !== c.index);
      await setRules(c.kind, c.name, rest, probeFor(removed, c.namespace, false));
      try {
        const result = await scenario(`drop-${c.kind === 'role' ? 'lease' : 'rule'}-${c.index}`);
        report.push({
          rule: describeRule(removed),
          broke: !result.ok,
          evidence: result.forbidden[0]?.slice(0, 300) ?? result.stage,
        });
      } finally {
        await setRules(c.kind, c.name, c.rules, probeFor(removed, c.namespace, true));
      }
    }
    console.log(
      report
        .map((r) => `${r.broke ? 'needed  ' : 'UNNEEDED'} ${r.rule}\n         ${r.evidence}`)
        .join('\n'),
    );
    expect(report.filter((r) => !r.broke).map((r) => r.rule)).toEqual([]);
    expect(report).toHaveLength(clusterRules.length + leaseRules.length - skipped);
  }, 1_800_000);

  const everyVerb = process.env.SOCKETFLEET_RBAC_SWEEP === 'all';
  it(
    everyVerb
      ? 'breaks without any single verb of any rule (SOCKETFLEET_RBAC_SWEEP=all)'
      : 'breaks without single verbs too (a representative subset; SOCKETFLEET_RBAC_SWEEP=all tries every verb)',
    async () => {
      interface Drop {
        kind: 'clusterrole' | 'role';
        name: string;
        rules: Rule[];
        index: number;
        verb: string;
        namespace: string;
      }
      const inCluster = (index: number, verb: string): Drop => ({
        kind: 'clusterrole',
        name: fullname,
        rules: clusterRules,
        index,
        verb,
        namespace: app,
      });
      const byResource = (resource: string, verb: string): Drop =>
        inCluster(
          clusterRules.findIndex((r) => r.resources.includes(resource)),
          verb,
        );
      // The sample: create next to patch (server-side apply of a missing object
      // needs both), watch next to list (the caches stream changes), delete
      // (shard scale-in), update on the Lease (renewal).
      const drops: Drop[] = everyVerb
        ? [
            ...clusterRules.flatMap((r, index) => r.verbs.map((verb) => inCluster(index, verb))),
            ...leaseRules.flatMap((r, index) =>
              r.verbs.map((verb) => ({
                kind: 'role' as const,
                name: leaseRole,
                rules: leaseRules,
                index,
                verb,
                namespace: ns,
              })),
            ),
          ]
        : [
            byResource('deployments', 'create'),
            byResource('endpointslices', 'watch'),
            byResource('statefulsets', 'delete'),
            {
              kind: 'role',
              name: leaseRole,
              rules: leaseRules,
              index: 0,
              verb: 'update',
              namespace: ns,
            },
          ];
      const report: { drop: string; broke: boolean; evidence: string }[] = [];
      for (const [n, d] of drops.entries()) {
        expect(d.index, `${d.verb}: no rule`).toBeGreaterThanOrEqual(0);
        const rule = d.rules[d.index]!;
        // A rule left without verbs is invalid: dropping its only verb drops the rule.
        const rules = d.rules
          .map((r, i) => (i === d.index ? { ...r, verbs: r.verbs.filter((v) => v !== d.verb) } : r))
          .filter((r) => r.verbs.length > 0);
        await setRules(d.kind, d.name, rules, probeFor(rule, d.namespace, false, d.verb));
        try {
          const result = await scenario(`drop-verb-${n}`);
          report.push({
            drop: `${d.verb} of ${describeRule(rule)}`,
            broke: !result.ok,
            evidence: result.forbidden[0]?.slice(0, 300) ?? result.stage,
          });
        } finally {
          await setRules(d.kind, d.name, d.rules, probeFor(rule, d.namespace, true, d.verb));
        }
      }
      console.log(
        report
          .map((r) => `${r.broke ? 'needed  ' : 'UNNEEDED'} ${r.drop}\n         ${r.evidence}`)
          .join('\n'),
      );
      expect(report.filter((r) => !r.broke).map((r) => r.drop)).toEqual([]);
      expect(report).toHaveLength(drops.length);
    },
    everyVerb ? 3_600_000 : 900_000,
  );

  it('namespaced mode (watchNamespaces): converges with Roles only, no cluster-wide access', async () => {
    const values = join(workDir, 'namespaced.json');
    writeFileSync(values, JSON.stringify({ watchNamespaces: [app] }));
    const r = await helm(
      ['upgrade', release, chartDir, '-n', ns, '--wait', '--timeout', '2m', '-f', values],
      cluster.env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect((await cluster.kubectl(['get', 'clusterrole', fullname])).stderr).toContain('NotFound');
    expect(await saCan('list', 'realtimeclusters.socketfleet.dev', 'default')).toBe(false);
    expect(await saCan('list', 'realtimeclusters.socketfleet.dev', app)).toBe(true);
    expect(await chartArgs()).toContain(`--namespace=${app}`);
    const result = await scenario('namespaced');
    expect(result).toEqual({ ok: true, stage: 'converged', forbidden: [] });
  });
});
