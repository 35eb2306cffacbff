import type { Logger } from 'pino';
import { parseRealtimeCluster } from '../api/parse.js';
import {
  API_VERSION,
  KIND,
  type AutoscalingStatus,
  type RealtimeCluster,
} from '../api/realtimecluster.js';
import { LABEL_COMPONENT, LABEL_INSTANCE } from '../desired/labels.js';
import { serverReplicas } from '../desired/autoscaling.js';
import { GATEWAY_SYNC_PORT, OPS_PORT, SOCKETIO_PORT } from '../desired/ports.js';
import type { EventRecorder } from '../reconcile/events.js';
import type { KindCache } from '../reconcile/informers.js';
import type { AnyObject, KubeClient } from '../reconcile/kube-client.js';
import { FIELD_MANAGER } from '../reconcile/kube-client.js';
import { requireKindInfo, resourcePath } from '../reconcile/kinds.js';
import { rfc3339 } from '../reconcile/time.js';
import {
  DEFAULT_LAG_THRESHOLD_MS,
  detectAbnormalities,
  detectGatewayRejection,
  PERSISTENT_LOSS_INTERVALS,
  type Abnormality,
} from './abnormal.js';
import { decide, EMPTY_STATE, type DeciderState, type PodSample } from './decider.js';
import type { ServerReading } from './prom-text.js';
import { INITIAL_REBALANCE_STATE, rebalanceDue, type RebalanceState } from './rebalance-trigger.js';
import {
  SCRAPE_TIMEOUT_MS,
  scrapeGateway,
  scrapeServer,
  type GatewayScraper,
  type Scraper,
} from './scrape.js';

/** What the reconciler merges into a cluster's status: one writer of status, one field manager. */
export interface AutopilotObservation {
  autoscaling: AutoscalingStatus | undefined;
  abnormalities: Abnormality[];
}

export interface AutopilotDeps {
  client: KubeClient;
  clusters: KindCache;
  pods: KindCache;
  events: EventRecorder;
  log: Logger;
  /** Asks the reconciler to write the new observation into status. */
  enqueue: (key: string) => void;
  scrape?: Scraper;
  /** Reads a gateway pod's sync sidecar (GatewayConfigRejected). */
  scrapeGateway?: GatewayScraper;
  /** POSTs a rebalance request to one server's ops port; answers how many clients it sheds. */
  rebalance?: (url: string, body: unknown) => Promise<{ misplaced: number; shedding: number }>;
  now?: () => number;
  /** How often due clusters are looked for; each cluster runs every spec.autoscaling.intervalSeconds. */
  tickMs?: number;
}

const GATEWAY_CHECK = 'GatewayConfigRejected';

interface ClusterMemory {
  lastRun: number;
  decider: DeciderState;
  lastScaleTime: string | undefined;
  /** Per pod: the last lost-publish counter and the new losses per interval since. */
  loss: Map<string, { last: number; deltas: number[] }>;
  observation: AutopilotObservation | undefined;
  /** Abnormalities already reported True in an Event, so each start is said once. */
  reported: Set<string>;
  rebalance: RebalanceState;
}

interface RawPod extends AnyObject {
  metadata: AnyObject['metadata'] & { deletionTimestamp?: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

/**
 * The operator's own autopilot: every interval it reads each ready server pod's /metrics (pod
 * IPs from the informer cache), decides the replicas (decider.ts), sets spec.replicas through
 * the scale subresource, and detects trouble (abnormal.ts). Status is written by the reconciler
 * from `observation()`, so the RealtimeCluster keeps one status writer.
 */
export class Autopilot {
  private readonly memory = new Map<string, ClusterMemory>();
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly scrape: Scraper;
  private readonly now: () => number;

  constructor(private readonly deps: AutopilotDeps) {
    this.scrape = deps.scrape ?? scrapeServer;
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.deps.tickMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 50));
  }

  observation(key: string): AutopilotObservation | undefined {
    return this.memory.get(key)?.observation;
  }

  /** Starts a run for every cluster whose interval is up; one run per cluster at a time. */
  tick(): void {
    const seen = new Set<string>();
    for (const raw of this.deps.clusters.listAll()) {
      const parsed = parseRealtimeCluster(raw);
      if (!parsed.ok) continue;
      const cluster = parsed.cluster;
      const key = `${cluster.metadata.namespace ?? 'default'}/${cluster.metadata.name}`;
      seen.add(key);
      const mem = this.memory.get(key);
      const due =
        !mem || this.now() - mem.lastRun >= cluster.spec.autoscaling.intervalSeconds * 1000;
      if (!due || this.running.has(key)) continue;
      this.running.add(key);
      void this.run(key, cluster)
        .catch((err: unknown) =>
          this.deps.log.warn(
            {
              cluster: key,
              err: 'ApiTransient',
              detail: err instanceof Error ? err.message : String(err),
            },
            'autopilot run failed',
          ),
        )
        .finally(() => this.running.delete(key));
    }
    for (const key of this.memory.keys()) if (!seen.has(key)) this.memory.delete(key);
  }

  /** One evaluation of one cluster (exported through tick; public for tests). */
  async run(key: string, cluster: RealtimeCluster): Promise<void> {
    const namespace = cluster.metadata.namespace ?? 'default';
    const now = this.now();
    const mem: ClusterMemory = this.memory.get(key) ?? {
      lastRun: 0,
      decider: EMPTY_STATE,
      lastScaleTime: cluster.status?.autoscaling?.lastScaleTime,
      loss: new Map(),
      observation: undefined,
      reported: new Set(),
      rebalance: INITIAL_REBALANCE_STATE,
    };
    mem.lastRun = now;
    this.memory.set(key, mem);

    const pods = this.podsOf(namespace, cluster.metadata.name, 'server');
    const readings = await Promise.all(
      pods.map(async (p) => {
        try {
          return await this.scrape(`http://${hostPort(p.ip, OPS_PORT)}/metrics`);
        } catch {
          return undefined;
        }
      }),
    );
    // Draining pods are on their way out: their clients are moving, so counting them would
    // double-count the load; they are neither samples nor "missing".
    const live = pods
      .map((p, i) => ({ pod: p.name, reading: readings[i] }))
      .filter((p) => !p.reading?.draining);

    const observations = live.map((p) => ({
      pod: p.pod,
      reading: p.reading,
      lossDeltas: this.lossDeltas(mem, p.pod, p.reading),
    }));
    for (const pod of mem.loss.keys()) if (!live.some((p) => p.pod === pod)) mem.loss.delete(pod);
    const anyRead = live.some((p) => p.reading !== undefined);
    const serverAbnormalities = anyRead
      ? detectAbnormalities({
          pods: observations,
          lagThresholdMs: cluster.spec.autoscaling.targetEventLoopLagMs
            ? Math.max(DEFAULT_LAG_THRESHOLD_MS, 2 * cluster.spec.autoscaling.targetEventLoopLagMs)
            : DEFAULT_LAG_THRESHOLD_MS,
          replicasPerShard: cluster.spec.redis.external ? 0 : cluster.spec.redis.replicasPerShard,
          redis: cluster.status?.redis,
        })
      : // Nothing answered (pods not running yet, or a network policy in the way): no claim.
        (mem.observation?.abnormalities ?? []).filter((a) => a.type !== GATEWAY_CHECK);
    const gateway =
      cluster.spec.gateway.mode === 'managed'
        ? ((await this.gatewayCheck(namespace, cluster.metadata.name)) ??
          mem.observation?.abnormalities.find((a) => a.type === GATEWAY_CHECK))
        : undefined;
    const abnormalities = gateway ? [...serverAbnormalities, gateway] : serverAbnormalities;
    await this.report(cluster, namespace, mem, abnormalities);

    await this.maybeRebalance(cluster, namespace, mem, pods, live);

    let autoscaling: AutoscalingStatus | undefined;
    const spec = cluster.spec.autoscaling;
    if (spec.enabled) {
      const samples: PodSample[] = live.map((p) => ({
        pod: p.pod,
        connections: p.reading?.connections,
        lagMs: p.reading?.lagMs,
      }));
      const current = cluster.spec.replicas;
      const d = decide({ now, currentReplicas: current, pods: samples, spec, state: mem.decider });
      mem.decider = d.state;
      if (d.desiredReplicas !== current) {
        const scaled = await this.setReplicas(cluster, namespace, d.desiredReplicas);
        if (scaled) {
          mem.lastScaleTime = rfc3339(new Date(now));
          this.deps.log.info(
            { cluster: key, from: current, to: d.desiredReplicas, reason: d.reason },
            'autoscaled',
          );
          await this.deps.events.normal(target(cluster, namespace), d.kind, 'Scale', d.reason);
        } else {
          // Someone else changed the cluster in between: decide again on the next run.
          mem.decider = { ...d.state, scales: d.state.scales.slice(0, -1) };
        }
      }
      autoscaling = {
        connections: d.connections,
        sampledPods: d.sampledPods,
        ...(d.meanLagMs !== undefined ? { eventLoopLagMs: Math.round(d.meanLagMs * 10) / 10 } : {}),
        desiredReplicas: d.desiredReplicas,
        ...(mem.lastScaleTime ? { lastScaleTime: mem.lastScaleTime } : {}),
        reason: d.reason,
      };
    }
    const next: AutopilotObservation = { autoscaling, abnormalities };
    const changed = JSON.stringify(next) !== JSON.stringify(mem.observation);
    mem.observation = next;
    if (changed) this.deps.enqueue(key);
  }

  /**
   * Once the ready server set has settled after a change, each server closes, spread over
   * spec.rebalance.spreadSeconds, the clients the gateway's hash now sends elsewhere.
   */
  private async maybeRebalance(
    cluster: RealtimeCluster,
    namespace: string,
    mem: ClusterMemory,
    pods: { name: string; ip: string }[],
    live: { pod: string; reading: ServerReading | undefined }[],
  ): Promise<void> {
    const inRing = pods.filter((p) => live.some((l) => l.pod === p.name));
    const servers = inRing.map((p) => hostPort(p.ip, SOCKETIO_PORT));
    const d = rebalanceDue(cluster, servers, serverReplicas(cluster.spec), mem.rebalance);
    mem.rebalance = d.state;
    if (!d.due) return;
    const post = this.deps.rebalance ?? postJson;
    const spreadMs = cluster.spec.rebalance.spreadSeconds * 1000;
    const answers = await Promise.all(
      inRing.map((p, i) =>
        post(`http://${hostPort(p.ip, OPS_PORT)}/rebalance`, {
          self: servers[i],
          servers,
          max: 1_000_000,
          spreadMs,
        }).catch(() => undefined),
      ),
    );
    const shedding = answers.reduce((a, r) => a + (r?.shedding ?? 0), 0);
    const failed = answers.filter((r) => r === undefined).length;
    const note = `${servers.length} servers: ${shedding} clients whose hash moved are being moved over ${cluster.spec.rebalance.spreadSeconds} s${failed > 0 ? `; ${failed} server(s) did not answer` : ''}.`;
    this.deps.log.info(
      { cluster: `${namespace}/${cluster.metadata.name}`, shedding, failed },
      'rebalancing',
    );
    if (shedding > 0 || failed > 0) {
      await this.deps.events.normal(target(cluster, namespace), 'Rebalancing', 'Rebalance', note);
    }
  }

  private lossDeltas(
    mem: ClusterMemory,
    pod: string,
    reading: ServerReading | undefined,
  ): number[] {
    const entry = mem.loss.get(pod);
    if (!reading) return entry?.deltas ?? [];
    if (!entry) {
      mem.loss.set(pod, { last: reading.lostPublishes, deltas: [] });
      return [];
    }
    // A restarted server starts its counters at 0 again.
    const delta = Math.max(0, reading.lostPublishes - entry.last);
    entry.last = reading.lostPublishes;
    entry.deltas = [...entry.deltas, delta].slice(-PERSISTENT_LOSS_INTERVALS);
    return entry.deltas;
  }

  /** One Warning Event when an abnormality starts, one Normal when it ends. */
  private async report(
    cluster: RealtimeCluster,
    namespace: string,
    mem: ClusterMemory,
    abnormalities: Abnormality[],
  ): Promise<void> {
    for (const a of abnormalities) {
      const was = mem.reported.has(a.type);
      if (a.status === 'True' && !was) {
        mem.reported.add(a.type);
        await this.deps.events.warning(target(cluster, namespace), a.reason, 'Detect', a.message);
      } else if (a.status === 'False' && was) {
        mem.reported.delete(a.type);
        await this.deps.events.normal(
          target(cluster, namespace),
          `${a.type}Resolved`,
          'Detect',
          a.message,
        );
      }
    }
  }

  /**
   * Every gateway pod's sidecar, ready or not: a gateway whose nginx is unready still has a
   * sidecar to ask, and is no less stuck on an old configuration.
   */
  private async gatewayCheck(namespace: string, name: string): Promise<Abnormality | undefined> {
    const scrape = this.deps.scrapeGateway ?? scrapeGateway;
    const pods = this.podsOf(namespace, name, 'gateway', false);
    const readings = await Promise.all(
      pods.map(async (p) => {
        try {
          return await scrape(`http://${hostPort(p.ip, GATEWAY_SYNC_PORT)}`);
        } catch {
          return undefined;
        }
      }),
    );
    return detectGatewayRejection(pods.map((p, i) => ({ pod: p.name, reading: readings[i] })));
  }

  /** The cluster's running pods of one component (ready ones only, unless told otherwise). */
  private podsOf(
    namespace: string,
    name: string,
    component: 'server' | 'gateway',
    readyOnly = true,
  ): { name: string; ip: string }[] {
    const out: { name: string; ip: string }[] = [];
    for (const obj of this.deps.pods.list(namespace) as RawPod[]) {
      const labels = obj.metadata.labels ?? {};
      if (labels[LABEL_INSTANCE] !== name || labels[LABEL_COMPONENT] !== component) continue;
      if (obj.metadata.deletionTimestamp) continue;
      const ready = obj.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const ip = obj.status?.podIP;
      if ((ready || !readyOnly) && ip) out.push({ name: obj.metadata.name, ip });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * spec.replicas through the scale subresource, guarded by the resourceVersion the decision was
   * made on: a `kubectl scale` in between wins and the autopilot decides again next run.
   */
  private async setReplicas(
    cluster: RealtimeCluster,
    namespace: string,
    replicas: number,
  ): Promise<boolean> {
    const info = requireKindInfo(API_VERSION, KIND);
    try {
      await this.deps.client.request(
        'PATCH',
        resourcePath(info, namespace, cluster.metadata.name, 'scale'),
        {
          query: { fieldManager: FIELD_MANAGER },
          body: {
            metadata: cluster.metadata.resourceVersion
              ? { resourceVersion: cluster.metadata.resourceVersion }
              : {},
            spec: { replicas },
          },
          contentType: 'application/merge-patch+json',
          write: {},
        },
      );
      return true;
    } catch (err) {
      this.deps.log.warn(
        {
          cluster: `${namespace}/${cluster.metadata.name}`,
          err: 'ApiConflict',
          detail: err instanceof Error ? err.message : String(err),
        },
        'could not set replicas; deciding again next run',
      );
      return false;
    }
  }
}

function target(
  cluster: RealtimeCluster,
  namespace: string,
): { apiVersion: string; kind: string; name: string; namespace: string; uid?: string } {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cluster.metadata.name,
    namespace,
    ...(cluster.metadata.uid ? { uid: cluster.metadata.uid } : {}),
  };
}

/** An IPv6 pod address needs brackets, in a URL and in nginx's server line alike. */
function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** POST a JSON body over plain HTTP (the ops port) and parse the JSON answer. */
async function postJson(
  url: string,
  body: unknown,
): Promise<{ misplaced: number; shedding: number }> {
  const res = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}.`);
  return (await res.json()) as { misplaced: number; shedding: number };
}
