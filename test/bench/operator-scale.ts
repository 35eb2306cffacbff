/**
 * The operator at scale (issue 18, item 4), on the kwok control plane: real etcd, kube-apiserver,
 * controller-manager and scheduler, with kwok's fake nodes running the pods.
 *
 * 1. One cluster at a time: apply -> Ready, --single rounds (target p50 < 3 s).
 * 2. --clusters RealtimeClusters applied at once: time until every one is Ready (target < 120 s),
 *    operator RSS sampled throughout (target < 256 MiB), write requests per cluster.
 * 3. An idle minute with every cluster Ready: writes the operator sends (target 0).
 *
 * The operator runs compiled (`node bin/socketfleet.js operator`), as in its image, so RSS is
 * the product's and not a TypeScript loader's. Ready times come from one `kubectl get -w`
 * stream; writes from the operator's own counter and from the API server's audit log.
 * Run: npm run bench:operator -- --clusters 500
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sampleProcesses } from '../../operator/bench/resources.js';
import { USER_AGENT } from '../../operator/reconcile/kube-client.js';
import { readAuditEvents, startCluster, type Cluster } from '../cluster/harness.js';
import { freePort } from '../e2e/support/operator-process.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAMESPACE = 'scale';
/** Pods one bench cluster runs (1 shard x master + replica, 1 server, 1 gateway), with headroom. */
const PODS_PER_CLUSTER = 6;

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '500' },
    nodes: { type: 'string', default: '10' },
    single: { type: 'string', default: '5' },
    'idle-seconds': { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '4' },
    /** kubectl processes creating the N clusters, each a share of them. */
    'create-parallelism': { type: 'string', default: '4' },
    /** Extra node flags for the operator process (e.g. "--max-semi-space-size=1"). */
    'operator-node-args': { type: 'string', default: '' },
    /** Write a heap snapshot of the operator into this directory once every cluster is Ready. */
    'heap-snapshot': { type: 'string' },
    /** Write a CPU profile of kube-apiserver, taken from the first create on, to this file. */
    'apiserver-profile': { type: 'string' },
    'apiserver-profile-seconds': { type: 'string', default: '30' },
  },
});
const clusters = Number(values.clusters);
const nodes = Number(values.nodes);
const singleRounds = Number(values.single);
const idleSeconds = Number(values['idle-seconds']);

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The smallest useful cluster: every field that costs pods turned down to one. */
function manifest(name: string): string {
  return `apiVersion: socketfleet.dev/v1alpha1
kind: RealtimeCluster
metadata:
  name: ${name}
  namespace: ${NAMESPACE}
spec:
  replicas: 1
  redis:
    shards: 1
  gateway:
    replicas: 1
---
`;
}

/**
 * Follows every RealtimeCluster's Ready condition through one watch; records when each turned
 * True (performance.now()) and, from its creationTimestamp, how long after its creation that was
 * (whole seconds from the API server's clock, which is this machine's).
 */
function watchReady(cluster: Cluster): {
  readyAt: Map<string, number>;
  createdToReady: Map<string, number>;
  stop: () => void;
} {
  const readyAt = new Map<string, number>();
  const createdToReady = new Map<string, number>();
  const child = spawn(
    join(cluster.binDir, 'kubectl'),
    [
      '-n',
      NAMESPACE,
      'get',
      'realtimeclusters',
      '--watch',
      '-o',
      'jsonpath={.metadata.name} {.metadata.creationTimestamp} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}',
    ],
    { env: cluster.env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const now = performance.now();
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [name, created, status] = line.trim().split(' ');
      if (name && status === 'True' && !readyAt.has(name)) {
        readyAt.set(name, now);
        createdToReady.set(name, (Date.now() - Date.parse(created ?? '')) / 1000);
      }
    }
  });
  return { readyAt, createdToReady, stop: () => child.kill('SIGTERM') };
}

interface Operator {
  child: ChildProcess;
  metricsPort: number;
  maxRssBytes: () => number;
  /** Stops the RSS maximum (before a heap snapshot, which costs far more than the operator). */
  freezeRss: () => void;
  nonLeaseWrites: () => Promise<number>;
  /** Reconciles run and the seconds they took, from the operator's own metrics. */
  reconciles: () => Promise<{ count: number; seconds: number }>;
}

async function metricSum(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = pattern.exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}

async function startOperator(cluster: Cluster): Promise<Operator> {
  const metricsPort = await freePort();
  // What the chart's key Secret mount provides (Redis passwords are derived from it).
  const keyDir = mkdtempSync(join(tmpdir(), 'socketfleet-scale-key-'));
  writeFileSync(join(keyDir, 'key'), randomBytes(48), { mode: 0o600 });
  const child = spawn(
    process.execPath,
    [
      ...values['operator-node-args'].split(' ').filter((a) => a !== ''),
      ...(values['heap-snapshot']
        ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${values['heap-snapshot']}`]
        : []),
      join(repo, 'bin/socketfleet.js'),
      'operator',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--metrics-port',
      String(metricsPort),
      `--operator-key-file=${join(keyDir, 'key')}`,
      '--leader-election=false',
      // kwok's pods run no Redis to form.
      '--redis-admin=false',
      '--concurrency',
      values.concurrency,
      '--log-level',
      'warn',
    ],
    { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'], env: cluster.env },
  );
  let maxRss = 0;
  let frozen = false;
  const sampler = setInterval(() => {
    if (frozen) return;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) maxRss = Math.max(maxRss, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  }, 250);
  child.once('exit', () => {
    clearInterval(sampler);
    rmSync(keyDir, { recursive: true, force: true });
  });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error('The operator exited during start-up.');
    const ok = await fetch(`http://127.0.0.1:${metricsPort}/readyz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    if (i > 240) throw new Error('The operator was not ready within 60 s.');
    await sleep(250);
  }
  return {
    child,
    metricsPort,
    maxRssBytes: () => maxRss,
    freezeRss: () => (frozen = true),
    nonLeaseWrites: () =>
      metricSum(
        metricsPort,
        /^socketfleet_operator_api_write_requests_total\{(?![^}]*kind="Lease")[^}]*\} (\S+)$/,
      ),
    async reconciles() {
      return {
        count: await metricSum(
          metricsPort,
          /^socketfleet_operator_reconcile_duration_seconds_count (\S+)$/,
        ),
        seconds: await metricSum(
          metricsPort,
          /^socketfleet_operator_reconcile_duration_seconds_sum (\S+)$/,
        ),
      };
    },
  };
}

/** RSS, V8 heap and off-heap memory from the operator's own metrics, in MiB. */
async function memoryBreakdown(port: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const mib = (re: RegExp): string => {
    let total = 0;
    for (const line of text.split('\n')) {
      const m = re.exec(line);
      if (m) total += Number(m[1]);
    }
    return (total / 2 ** 20).toFixed(0);
  };
  const space = (name: string): string =>
    mib(
      new RegExp(
        `^socketfleet_operator_nodejs_heap_space_size_used_bytes\\{space="${name}"\\} (\\S+)$`,
      ),
    );
  return [
    `RSS ${mib(/^socketfleet_operator_process_resident_memory_bytes (\S+)$/)} MiB`,
    `heap used ${mib(/^socketfleet_operator_nodejs_heap_size_used_bytes (\S+)$/)}`,
    `of ${mib(/^socketfleet_operator_nodejs_heap_size_total_bytes (\S+)$/)} MiB`,
    `(old ${space('old')}, new ${space('new')}, code ${space('code')}, large ${space('large_object')})`,
    `external ${mib(/^socketfleet_operator_nodejs_external_memory_bytes (\S+)$/)} MiB`,
  ].join(' ');
}

async function waitAll(
  readyAt: Map<string, number>,
  names: string[],
  timeoutMs: number,
): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (names.every((n) => readyAt.has(n))) return true;
    await sleep(100);
  }
  return false;
}

/** kwokctl's binary runtime keeps each component's pid in the cluster's state directory. */
function pidOf(cluster: Cluster, component: string): number | undefined {
  const file = join(dirname(cluster.kubeconfigPath), 'pids', `${component}.pid`);
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
}

/** stdout of one kubectl call as bytes (a pprof profile is binary). */
function rawBytes(cluster: Cluster, args: string[]): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(join(cluster.binDir, 'kubectl'), args, {
      env: cluster.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.once('error', reject);
    child.once('close', () => resolvePromise(Buffer.concat(chunks)));
  });
}

/** Resident memory by kind of mapping: the V8 heap and malloc are anonymous, code is the binary. */
function rssByMapping(pid: number): string {
  const kb = new Map<string, number>();
  let kind = '';
  try {
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        const path = head[1] ?? '';
        kind = path === '' ? 'anonymous' : path.startsWith('[') ? path : 'files';
        continue;
      }
      const m = /^Rss:\s+(\d+) kB/.exec(line);
      if (m) kb.set(kind, (kb.get(kind) ?? 0) + Number(m[1]));
    }
  } catch {
    return 'unavailable';
  }
  return [...kb]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} MiB`)
    .join(', ');
}

/** Audit-logged writes by client (the User-Agent's program name). */
function writesByClient(events: { userAgent?: string }[]): string {
  const n = new Map<string, number>();
  for (const e of events) {
    const client = (e.userAgent ?? 'unknown').split('/')[0]!;
    n.set(client, (n.get(client) ?? 0) + 1);
  }
  return [...n]
    .sort((a, b) => b[1] - a[1])
    .map(([c, k]) => `${c} ${k}`)
    .join(', ');
}

/** CPU seconds of each control-plane process (kwokctl's component names). */
function componentCpu(cluster: Cluster): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of [
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'kwok-controller',
  ]) {
    const pid = pidOf(cluster, c);
    if (pid) out.set(c, sampleProcesses([pid]).cpuSeconds);
  }
  return out;
}

/** Jiffies of all CPUs, and of them idle (idle + iowait), from /proc/stat. */
function machineCpu(): { total: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

/** The machine is shared: a reader needs to know how busy it was. */
function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<number> {
  // Room for every pod and every Service's ClusterIP; the defaults fill at ~125 clusters.
  process.env.SOCKETFLEET_NODES = String(nodes);
  process.env.SOCKETFLEET_NODE_PODS = String(
    Math.ceil(((clusters + singleRounds) * PODS_PER_CLUSTER) / nodes) + 20,
  );
  process.env.SOCKETFLEET_SERVICE_CIDR = '10.96.0.0/16';
  const cluster = await startCluster({ name: `socketfleet-scale-${process.pid}` });
  let operator: Operator | undefined;
  let watcher: ReturnType<typeof watchReady> | undefined;
  try {
    await cluster.kubectlOk(['apply', '--server-side', '-f', join(repo, 'crds')]);
    // `kubectl wait` fails outright while the new CRD has no conditions yet: ask again.
    for (let i = 0; ; i++) {
      const r = await cluster.kubectl([
        'wait',
        '--for=condition=Established',
        'crd/realtimeclusters.socketfleet.dev',
      ]);
      if (r.code === 0) break;
      if (i >= 20) throw new Error(`The CRD was not Established: ${r.stderr.trim()}`);
      await sleep(500);
    }
    await cluster.kubectlOk(['create', 'namespace', NAMESPACE]);
    operator = await startOperator(cluster);
    watcher = watchReady(cluster);
    const auditSince = new Date();

    const singles: number[] = [];
    for (let i = 0; i < singleRounds; i++) {
      const name = `single-${i}`;
      const t0 = performance.now();
      await cluster.kubectlOk(['apply', '-f', '-'], manifest(name));
      if (!(await waitAll(watcher.readyAt, [name], 60_000)))
        throw new Error(`${name} was not Ready within 60 s.`);
      singles.push((watcher.readyAt.get(name)! - t0) / 1000);
      log(`single ${name}: Ready ${singles.at(-1)!.toFixed(2)} s after apply`);
    }
    const writesBeforeBulk = await operator.nonLeaseWrites();
    const reconcilesBeforeBulk = await operator.reconciles();

    const names = Array.from({ length: clusters }, (_, i) => `bulk-${i}`);
    const apiserverPid = pidOf(cluster, 'kube-apiserver');
    const cpuBefore = {
      operator: sampleProcesses([operator.child.pid!]).cpuSeconds,
      apiserver: apiserverPid ? sampleProcesses([apiserverPid]).cpuSeconds : NaN,
    };
    const componentsBefore = componentCpu(cluster);
    const machineBefore = machineCpu();
    const profile = values['apiserver-profile']
      ? rawBytes(cluster, [
          'get',
          '--raw',
          `/debug/pprof/profile?seconds=${values['apiserver-profile-seconds']}`,
        ])
      : undefined;
    const t0 = performance.now();
    // kubectl creates a file's objects one after another; a few at once keep the bench's own
    // client from being what paces the start (each object's own creation -> Ready is reported too).
    const slices = Number(values['create-parallelism']);
    await Promise.all(
      Array.from({ length: slices }, (_, i) =>
        cluster.kubectlOk(
          ['create', '-f', '-'],
          names
            .filter((_, j) => j % slices === i)
            .map(manifest)
            .join(''),
        ),
      ),
    );
    const applied = (performance.now() - t0) / 1000;
    log(`${clusters} clusters created in ${applied.toFixed(1)} s`);
    const converged = await waitAll(watcher.readyAt, names, 600_000);
    const readyTimes = names
      .filter((n) => watcher!.readyAt.has(n))
      .map((n) => (watcher!.readyAt.get(n)! - t0) / 1000)
      .sort((a, b) => a - b);
    const allReadyS = converged ? readyTimes.at(-1)! : Infinity;
    const machineAfter = machineCpu();
    const componentsAfter = componentCpu(cluster);
    const machineBusy =
      1 - (machineAfter.idle - machineBefore.idle) / (machineAfter.total - machineBefore.total);
    const components = [...componentsAfter]
      .map(([c, s]) => `${c} ${(s - (componentsBefore.get(c) ?? 0)).toFixed(0)} s`)
      .join(', ');
    const controlPlaneCpu = [...componentsAfter].reduce(
      (sum, [c, s]) => sum + s - (componentsBefore.get(c) ?? 0),
      0,
    );
    const createdToReady = names
      .map((n) => watcher!.createdToReady.get(n))
      .filter((s): s is number => s !== undefined)
      .sort((a, b) => a - b);
    log(`${readyTimes.length}/${clusters} Ready; last at ${allReadyS.toFixed(1)} s`);
    if (profile) {
      writeFileSync(values['apiserver-profile']!, await profile);
      log(`kube-apiserver CPU profile in ${values['apiserver-profile']}`);
    }
    const memory = await memoryBreakdown(operator.metricsPort);
    log(`operator memory with every cluster Ready: ${memory}`);
    const smaps = rssByMapping(operator.child.pid!);
    log(`operator RSS by mapping with every cluster Ready: ${smaps}`);
    if (values['heap-snapshot']) {
      operator.freezeRss();
      operator.child.kill('SIGUSR2');
      log(`heap snapshot requested into ${values['heap-snapshot']}`);
      await sleep(15_000);
    }
    const bulkWrites = (await operator.nonLeaseWrites()) - writesBeforeBulk;
    const afterBulk = await operator.reconciles();
    const cpu = {
      operator: sampleProcesses([operator.child.pid!]).cpuSeconds - cpuBefore.operator,
      apiserver: apiserverPid
        ? sampleProcesses([apiserverPid]).cpuSeconds - cpuBefore.apiserver
        : NaN,
    };
    const bulkReconciles = afterBulk.count - reconcilesBeforeBulk.count;
    const bulkReconcileSeconds = afterBulk.seconds - reconcilesBeforeBulk.seconds;

    await sleep(10_000);
    const idleStart = await operator.nonLeaseWrites();
    log(`idle for ${idleSeconds} s`);
    await sleep(idleSeconds * 1000);
    const idleWrites = (await operator.nonLeaseWrites()) - idleStart;
    const rssMiB = operator.maxRssBytes() / 2 ** 20;

    const allAudit = await readAuditEvents(cluster.auditLogPath, { since: auditSince });
    const audit = allAudit.filter((e) => (e.userAgent ?? '').startsWith(USER_AGENT));
    const singleSorted = [...singles].sort((a, b) => a - b);
    const p50Single = percentile(singleSorted, 50);
    const rows: [string, string, boolean][] = [
      [
        `${clusters} clusters applied at once -> all Ready`,
        `${allReadyS.toFixed(1)} s (p50 ${percentile(readyTimes, 50).toFixed(1)} s, p99 ${percentile(readyTimes, 99).toFixed(1)} s; target < 120 s)`,
        allReadyS < 120,
      ],
      [
        'operator RSS, max over the run',
        `${rssMiB.toFixed(0)} MiB (target < 256 MiB)`,
        rssMiB < 256,
      ],
      [
        'one cluster apply -> Ready, p50',
        `${p50Single.toFixed(2)} s over ${singles.length} rounds (${singles.map((s) => s.toFixed(2)).join(', ')}; target < 3 s)`,
        p50Single < 3,
      ],
      [
        `writes in an idle ${idleSeconds} s with ${clusters + singleRounds} clusters`,
        `${idleWrites} (target 0)`,
        idleWrites === 0,
      ],
    ];
    process.stdout.write(
      [
        `operator scale: ${clusters} clusters on ${nodes} kwok nodes, --concurrency ${values.concurrency}`,
        ...rows.map(([what, value, ok]) => `${ok ? 'PASS' : 'FAIL'}  ${what}: ${value}`),
        `info  write requests per cluster during the bulk convergence: ${(bulkWrites / clusters).toFixed(1)} (operator counter; ${audit.length} writes in the audit log over the whole run, Leases excluded: ${audit.filter((e) => e.objectRef?.resource !== 'leases').length})`,
        `info  reconciles during the bulk convergence: ${bulkReconciles} (${(bulkReconciles / clusters).toFixed(1)} per cluster), mean ${((bulkReconcileSeconds / Math.max(bulkReconciles, 1)) * 1000).toFixed(0)} ms each`,
        `info  CPU during the bulk convergence: operator ${cpu.operator.toFixed(1)} s (${((cpu.operator / clusters) * 1000).toFixed(0)} ms per cluster), kube-apiserver ${cpu.apiserver.toFixed(1)} s; load average ${loadAverage()}`,
        `info  machine CPU busy ${(machineBusy * 100).toFixed(0)}% of ${cpus().length} cores from the first create to the last Ready; control plane CPU: ${components}`,
        // The work the convergence took, spread perfectly over every core: no schedule of it is faster.
        `info  CPU floor of this convergence on ${cpus().length} cores: control plane ${(controlPlaneCpu / cpus().length).toFixed(0)} s, with the operator ${((controlPlaneCpu + cpu.operator) / cpus().length).toFixed(0)} s (CPU seconds / cores)`,
        `info  kubectl create of the ${clusters} objects (${values['create-parallelism']} kubectl processes) took ${applied.toFixed(1)} s of the convergence time`,
        `info  each cluster's creationTimestamp -> Ready (whole seconds): p50 ${percentile(createdToReady, 50).toFixed(0)} s, p99 ${percentile(createdToReady, 99).toFixed(0)} s, max ${(createdToReady.at(-1) ?? NaN).toFixed(0)} s`,
        `info  operator memory with every cluster Ready: ${memory}; RSS by mapping: ${smaps}`,
        `info  writes in the audit log during the run, by client: ${writesByClient(allAudit)}`,
        '',
      ].join('\n'),
    );
    return rows.every(([, , ok]) => ok) ? 0 : 1;
  } finally {
    watcher?.stop();
    operator?.child.kill('SIGKILL');
    await cluster.stop();
  }
}

process.exitCode = await main();
