import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { parseRealtimeCluster } from '../api/parse.js';
import {
  API_VERSION,
  KIND,
  type RealtimeCluster,
  type RealtimeClusterStatus,
} from '../api/realtimecluster.js';
import {
  buildClientAuthSecret,
  buildDesired,
  buildRedisAuthSecret,
  clientAuthWarnings,
} from '../desired/index.js';
import { serverReplicas } from '../desired/autoscaling.js';
import { serverSelector } from '../desired/labels.js';
import { deriveRedisPassword, deriveRedisPasswords, REDIS_USERS } from '../desired/redis-acl.js';
import { resourceNames } from '../desired/names.js';
import { clusterEndpoint } from '../desired/gateway.js';
import type { KubeObject } from '../desired/types.js';
import {
  decideApply,
  memoAfterSkip,
  type AppliedMemo,
  INSTANCE_LABEL,
  objectKey,
  ownedBy,
  prepareForApply,
  APPLIED_HASH_ANNOTATION,
} from './apply-plan.js';
import { findCondition } from './conditions.js';
import { withAutopilot } from './autopilot-status.js';
import type { AutopilotObservation } from '../autoscale/loop.js';
import { RedisCaReader } from './redis-ca.js';
import { RedisClusterManager } from './redis-cluster.js';
import { OperatorError, toOperatorError, type ErrorTag } from './errors.js';
import type { EventRecorder, EventTarget } from './events.js';
import type { KindCache } from './informers.js';
import type { AnyObject, KubeClient } from './kube-client.js';
import { kindInfo, OWNED_KINDS, requireKindInfo } from './kinds.js';
import { mapLimit } from './map-limit.js';
import type { OperatorMetrics } from './metrics.js';
import type { Outcome } from './queue.js';
import {
  computeStatus,
  invalidSpecStatus,
  jsonEqual,
  type StatusFacts,
  type WorkloadFacts,
} from './status.js';
import { rfc3339 } from './time.js';

export interface Caches {
  clusters: KindCache;
  /** One cache per kind in OWNED_KINDS, label-selected on the managed-by label. */
  owned: Map<string, KindCache>;
  /** Pods of every component (managed-by label); the Redis pods are what the planner reads. */
  pods: KindCache;
}

export interface ReconcilerDeps {
  client: KubeClient;
  caches: Caches;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  /** Consecutive failures of this key so far (from the work queue). */
  failures(key: string): number;
  now?: () => Date;
  /**
   * Roots of the per-cluster Redis passwords, recomputed instead of read back from Secrets: the
   * current key (new Secrets) first, then a previous one (clusters made before a rotation).
   */
  operatorKeys: Buffer[];
  /** Form, heal and reshard Redis over the network; false where pods never run (kwok). */
  redisAdmin?: boolean;
  /** What the autopilot last observed of a cluster (autoscaling, abnormalities), for status. */
  autopilot?: (key: string) => AutopilotObservation | undefined;
}

/** Retriable failures in a row before the cluster is reported Degraded (one blip is not news). */
const DEGRADED_AFTER_FAILURES = 3;
/**
 * Writes in flight at once within one reconcile (times --concurrency across clusters): enough
 * for the first wave of a typical cluster (16 objects and its Secret) to go out together.
 */
const APPLY_PARALLELISM = 20;
/** Kinds whose pods mount the other objects: applied after them. */
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet']);
/** Level-based safety net: look at every cluster again even if no event arrives. */
const RESYNC_MS = 10 * 60_000;
/** While Redis is forming, healing, resharding or rolling: look again soon for the next step. */
const REDIS_BUSY_MS = 2_000;
/** While no Redis pod answers (pods starting, or the network blocks the operator). */
const REDIS_WAIT_MS = 10_000;

interface RawCluster extends AnyObject {
  spec?: unknown;
  status?: RealtimeClusterStatus;
}

/**
 * Reconciles one RealtimeCluster: level-based (it never looks at what event woke it) and
 * idempotent, so running it twice in a row makes no writes the second time.
 */
export class Reconciler {
  /** Hash we last applied per object, so a cache that lags our own write does not cause a rewrite. */
  private readonly appliedHashes = new Map<string, AppliedMemo>();
  /** When this process last created (or found) each Redis password Secret, by namespace/name. */
  private readonly secretsEnsured = new Map<string, number>();
  /**
   * Clusters (key -> uid) whose namespace refused a create because it is being deleted. The
   * namespace's deletion removes their objects one by one, and each removal would start a
   * reconcile that is refused again; a namespace never stops terminating, so they wait for their
   * own deletion. Keyed with the uid: a namespace of the same name created later is a new one.
   */
  private readonly namespaceDeleting = new Map<string, string>();
  private readonly now: () => Date;
  private readonly redis: RedisClusterManager | undefined;
  private readonly redisCa: RedisCaReader;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.redisCa = new RedisCaReader(deps.client);
    this.redis =
      deps.redisAdmin === false
        ? undefined
        : new RedisClusterManager(
            { pods: deps.caches.pods, statefulSets: deps.caches.owned.get('StatefulSet') },
            // The operator's own login, derived again from the key and the cluster's UID: the
            // operator never reads a Secret, not even the one it created.
            (uid) =>
              deps.operatorKeys.map((key) => ({
                username: REDIS_USERS.operator,
                password: deriveRedisPassword(key, uid, 'operator'),
              })),
            deps.log,
            (namespace, name, key) => this.redisCa.read(namespace, name, key),
          );
  }

  async reconcile(key: string): Promise<Outcome> {
    const [namespace, name] = splitKey(key);
    const { metrics, log } = this.deps;
    const raw = this.deps.caches.clusters.get(namespace, name);
    if (!raw || raw.metadata.deletionTimestamp) {
      // Owned objects carry owner references; the garbage collector removes them.
      this.forget(namespace, name);
      return { kind: 'done' };
    }
    if (this.namespaceDeleting.get(key) === (raw.metadata.uid ?? '')) return { kind: 'done' };
    const end = metrics.duration.startTimer();
    const target: EventTarget = {
      apiVersion: API_VERSION,
      kind: KIND,
      name,
      namespace,
      uid: raw.metadata.uid,
    };
    try {
      const parsed = parseRealtimeCluster(raw);
      if (!parsed.ok) {
        await this.reportDegraded(raw, target, 'InvalidSpec', parsed.problems.join('; '), false);
        metrics.reconciles.inc({ result: 'invalid' });
        metrics.recordError('InvalidSpec');
        return { kind: 'done' };
      }
      const afterMs = await this.converge(parsed.cluster, raw, target);
      metrics.reconciles.inc({ result: 'success' });
      return { kind: 'requeue', afterMs };
    } catch (e) {
      const err = toOperatorError(e);
      if (err.tag === 'NamespaceTerminating') {
        // Not a failure: the namespace's deletion removes this cluster next, and its watch event
        // ends the work. Retrying would only be refused again until then.
        this.namespaceDeleting.set(key, raw.metadata.uid ?? '');
        log.info({ cluster: key, detail: err.message }, 'namespace is being deleted; not retrying');
        return { kind: 'done' };
      }
      metrics.recordError(err.tag);
      log.warn({ err: err.tag, cluster: key, detail: err.message }, 'reconcile failed');
      if (err.terminal) {
        metrics.reconciles.inc({ result: 'invalid' });
        await this.reportDegraded(raw, target, err.tag, err.message, false).catch(() => undefined);
        return { kind: 'done' };
      }
      metrics.reconciles.inc({ result: 'error' });
      if (this.deps.failures(key) + 1 >= DEGRADED_AFTER_FAILURES) {
        await this.reportDegraded(raw, target, err.tag, err.message, true).catch(() => undefined);
      }
      return { kind: 'retry' };
    } finally {
      end();
    }
  }

  /** Returns when to look at the cluster again. */
  private async converge(
    cluster: RealtimeCluster,
    raw: RawCluster,
    target: EventTarget,
  ): Promise<number> {
    const { client, caches, log } = this.deps;
    const namespace = raw.metadata.namespace ?? 'default';
    const name = cluster.metadata.name;
    const uid = raw.metadata.uid ?? '';
    const names = resourceNames(name);
    const actions: string[] = [];

    // Created with the first wave below, which the workloads mounting them follow.
    const secrets: (() => Promise<string | undefined>)[] = [];
    const ensure = (secretName: string, build: () => KubeObject): void => {
      secrets.push(async () =>
        (await this.ensureSecret(namespace, secretName, build))
          ? `created Secret/${secretName}`
          : undefined,
      );
    };
    if (cluster.spec.redis.auth.enabled && !cluster.spec.redis.external) {
      // The UID keys the password derivation: never derive from an empty one.
      if (uid === '') throw new Error(`RealtimeCluster ${namespace}/${name} has no uid yet.`);
      ensure(names.redisAuthSecret, () =>
        buildRedisAuthSecret(
          { ...cluster, metadata: { ...cluster.metadata, namespace } },
          deriveRedisPasswords(this.deps.operatorKeys[0]!, uid),
        ),
      );
    }
    if (cluster.spec.auth.mode === 'jwt' && cluster.spec.auth.secretName === undefined) {
      ensure(names.clientAuthSecret, () =>
        buildClientAuthSecret(
          { ...cluster, metadata: { ...cluster.metadata, namespace } },
          randomBytes(48).toString('base64url'),
        ),
      );
    }

    // Redis first: which removed shards still hold slots decides which StatefulSets stay.
    const redisObs =
      this.redis && !cluster.spec.redis.external
        ? await this.redis.observe(cluster, namespace, uid)
        : undefined;
    // Without an observation (--redis-admin=false, kwok tests) removed shards go at once.
    const retainedShards = redisObs?.plan.retainedShards ?? [];
    const retainedNodes = redisObs?.plan.retainedNodes ?? [];

    let desired: KubeObject[];
    try {
      const built = buildDesired(cluster, { retainedShards, retainedNodes });
      desired = built.objects;
      for (const w of built.warnings) log.warn({ cluster: `${namespace}/${name}` }, w);
    } catch (e) {
      throw new OperatorError('BuildFailed', e instanceof Error ? e.message : String(e), {
        cause: e,
      });
    }

    const applied = new Map<string, AnyObject>();
    const desiredKeys = new Set<string>();
    const prepared = desired.map((obj) => prepareForApply(obj, namespace, name));
    for (const obj of prepared) desiredKeys.add(objectKey(obj));
    // Workloads go last, so the ServiceAccounts, ConfigMaps and Secrets their pods mount exist
    // when the pods are created. Within a wave the writes run in parallel: a reconcile then
    // costs a few round trips instead of one per object, which is what bounds convergence when
    // hundreds of clusters are applied at once.
    const applyTask = (obj: KubeObject) => async (): Promise<string | undefined> => {
      const verb = await this.applyOne(obj, namespace, applied);
      return verb ? `${verb} ${obj.kind}/${obj.metadata.name}` : undefined;
    };
    const waves = [
      [...secrets, ...prepared.filter((o) => !WORKLOAD_KINDS.has(o.kind)).map(applyTask)],
      prepared.filter((o) => WORKLOAD_KINDS.has(o.kind)).map(applyTask),
    ];
    for (const wave of waves) {
      const done = await mapLimit(wave, APPLY_PARALLELISM, (task) => task());
      for (const action of done) if (action) actions.push(action);
    }

    for (const kind of OWNED_KINDS) {
      const cache = caches.owned.get(kind);
      if (!cache || !uid) continue;
      for (const live of cache.list(namespace)) {
        if (live.metadata.labels?.[INSTANCE_LABEL] !== name) continue;
        if (!ownedBy(live, uid) || live.metadata.deletionTimestamp) continue;
        const k = objectKey(live);
        if (desiredKeys.has(k)) continue;
        await client.delete(
          requireKindInfo(live.apiVersion, live.kind),
          namespace,
          live.metadata.name,
          live.metadata.uid,
        );
        this.appliedHashes.delete(`${namespace}/${k}`);
        actions.push(`deleted ${live.kind}/${live.metadata.name}`);
      }
    }

    if (redisObs && this.redis && redisObs.plan.steps.length > 0) {
      const podInfo = requireKindInfo('v1', 'Pod');
      const done = await this.redis.act(cluster, namespace, redisObs, async (pod, podUid) => {
        await client.delete(podInfo, namespace, pod, podUid);
        actions.push(`restarted Pod/${pod} (${redisObs.plan.reason})`);
      });
      if (done.length > 0 && redisObs.plan.phase !== 'rolling') {
        actions.push(`Redis: ${redisObs.plan.reason.replace(/\.$/, '')}`);
      }
    }

    const facts = this.statusFacts(cluster, namespace, applied);
    facts.nodesPerShard = cluster.spec.redis.replicasPerShard + 1;
    facts.redis = cluster.spec.redis.external
      ? {
          managed: false,
          reason: 'External',
          message: 'spec.redis.external: the servers use an external Redis Cluster.',
        }
      : redisObs
        ? {
            managed: true,
            phase: redisObs.plan.phase,
            reason: redisObs.plan.reason,
            clusterState: redisObs.plan.clusterState,
            slotsCovered: redisObs.plan.slotsCovered,
            shards: redisObs.plan.shards,
          }
        : {
            managed: false,
            reason: 'NotObserved',
            message: 'The operator runs with --redis-admin=false and does not observe Redis.',
          };
    const status = withAutopilot(
      computeStatus(facts, raw.status, rfc3339(this.now())),
      this.deps.autopilot?.(`${namespace}/${raw.metadata.name}`),
      rfc3339(this.now()),
      cluster.metadata.generation,
    );
    const wasReady = findCondition(raw.status?.conditions, 'Ready')?.status === 'True';
    // The status and the Events say the same thing from what this reconcile saw, and neither
    // waits for the other: one round trip, not one each.
    const writes: Promise<unknown>[] = [this.writeStatus(raw, namespace, status)];
    if (actions.length > 0) {
      // Said on every change, not on every reconcile: an Event per resync would be noise.
      for (const w of clientAuthWarnings(cluster))
        writes.push(this.deps.events.warning(target, 'InsecureAuth', 'Apply', w));
      log.info({ cluster: `${namespace}/${name}`, actions }, 'applied changes');
      writes.push(
        this.deps.events.normal(target, 'Applied', 'Apply', capitalise(actions.join(', ')) + '.'),
      );
    }
    const nowReady = findCondition(status.conditions, 'Ready');
    if (!wasReady && nowReady?.status === 'True') {
      writes.push(this.deps.events.normal(target, 'Ready', 'Reconcile', nowReady.message));
    }
    // Events never reject (events.ts); a failed status write fails the reconcile as before.
    await Promise.all(writes);
    if (!redisObs || redisObs.plan.phase === 'stable') return RESYNC_MS;
    return redisObs.views.some((v) => v.nodes !== undefined) ? REDIS_BUSY_MS : REDIS_WAIT_MS;
  }

  /** Applies one object unless it is unchanged; returns what was done, for the Event. */
  private async applyOne(
    prepared: KubeObject,
    namespace: string,
    applied: Map<string, AnyObject>,
  ): Promise<string | undefined> {
    const k = objectKey(prepared);
    const memoKey = `${namespace}/${k}`;
    const hash = prepared.metadata.annotations?.[APPLIED_HASH_ANNOTATION] ?? '';
    const live = await this.live(prepared, namespace);
    const memo = this.appliedHashes.get(memoKey);
    const decision = decideApply(prepared, live, memo);
    if (decision === 'skip') {
      const next = live ? memoAfterSkip(hash, live, memo) : memo;
      if (next) this.appliedHashes.set(memoKey, next);
      return undefined;
    }
    const result = await this.deps.client.apply<AnyObject>(prepared);
    this.appliedHashes.set(memoKey, {
      hash,
      uid: result.metadata.uid,
      generation: result.metadata.generation,
      resourceVersion: result.metadata.resourceVersion,
    });
    applied.set(k, result);
    return { create: 'created', update: 'updated', 'correct-drift': 'reverted a manual change to' }[
      decision
    ];
  }

  private async live(prepared: KubeObject, namespace: string): Promise<AnyObject | undefined> {
    const cache = this.deps.caches.owned.get(prepared.kind);
    if (cache && cache.info.apiVersion === prepared.apiVersion) {
      return cache.get(namespace, prepared.metadata.name);
    }
    // A kind without a watch (none today): reads are cheap and never count as writes.
    const info =
      kindInfo(prepared.apiVersion, prepared.kind) ??
      requireKindInfo(prepared.apiVersion, prepared.kind);
    return this.deps.client.get(info, namespace, prepared.metadata.name);
  }

  /**
   * Creates a Secret the operator generates (Redis password, client JWT key); "already exists" is success, whoever made it: the operator
   * may only create Secrets (never get, list or watch them), so it cannot tell and must not care.
   * An existing Secret is never read or overwritten, so the password survives operator restarts.
   * Tried once per cluster per resync interval, which also re-creates a Secret deleted by hand.
   */
  private async ensureSecret(
    namespace: string,
    secretName: string,
    build: () => KubeObject,
  ): Promise<boolean> {
    const k = `${namespace}/${secretName}`;
    const now = this.now().getTime();
    const last = this.secretsEnsured.get(k);
    if (last !== undefined && now - last < RESYNC_MS) return false;
    try {
      await this.deps.client.createObject(build());
      this.secretsEnsured.set(k, now);
      return true;
    } catch (err) {
      if (err instanceof OperatorError && err.httpStatus === 409) {
        this.secretsEnsured.set(k, now);
        return false;
      }
      throw err;
    }
  }

  private workload(
    kind: string,
    namespace: string,
    name: string,
    applied: Map<string, AnyObject>,
  ): WorkloadFacts | undefined {
    const group = kind === 'Deployment' || kind === 'StatefulSet' ? 'apps' : '';
    const obj =
      applied.get(`${group}/${kind}/${name}`) ??
      this.deps.caches.owned.get(kind)?.get(namespace, name);
    if (!obj) return undefined;
    const status = (obj as { status?: WorkloadFacts }).status ?? {};
    return {
      generation: obj.metadata.generation,
      observedGeneration: status.observedGeneration,
      replicas: status.replicas,
      readyReplicas: status.readyReplicas,
      updatedReplicas: status.updatedReplicas,
    };
  }

  private statusFacts(
    cluster: RealtimeCluster,
    namespace: string,
    applied: Map<string, AnyObject>,
  ): StatusFacts {
    const names = resourceNames(cluster.metadata.name);
    const managedGateway = cluster.spec.gateway.mode === 'managed';
    const shards: (WorkloadFacts | undefined)[] = [];
    for (let i = 0; i < cluster.spec.redis.shards; i++) {
      shards.push(this.workload('StatefulSet', namespace, names.redisShard(i), applied));
    }
    return {
      generation: cluster.metadata.generation,
      desiredReplicas: serverReplicas(cluster.spec),
      server: this.workload('Deployment', namespace, names.server, applied),
      gateway: managedGateway
        ? {
            desired: cluster.spec.gateway.replicas,
            facts: this.workload('Deployment', namespace, names.gateway, applied),
          }
        : undefined,
      shards,
      selector: serverSelector(cluster),
      endpoint: this.endpoint(cluster, namespace),
    };
  }

  /** Where clients connect: the load balancer address once there is one, else the in-cluster name. */
  private endpoint(cluster: RealtimeCluster, namespace: string): string {
    const names = resourceNames(cluster.metadata.name);
    const svc = this.deps.caches.owned.get('Service')?.get(namespace, names.gatewayService) as
      | { status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } } }
      | undefined;
    const ingress = svc?.status?.loadBalancer?.ingress?.[0];
    return clusterEndpoint(cluster, namespace, ingress?.ip ?? ingress?.hostname);
  }

  private async writeStatus(
    raw: RawCluster,
    namespace: string,
    status: RealtimeClusterStatus,
  ): Promise<boolean> {
    if (jsonEqual(raw.status ?? {}, status)) return false;
    this.deps.log.debug(
      { cluster: `${namespace}/${raw.metadata.name}`, from: raw.status ?? {}, to: status },
      'writing status',
    );
    await this.deps.client.apply(
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: raw.metadata.name, namespace },
        status,
      },
      'status',
    );
    return true;
  }

  /**
   * Marks the cluster Degraded and says why in one Warning event. A terminal problem (bad spec)
   * waits for the user; a retrying one (an API call failed) says that it is being retried.
   */
  private async reportDegraded(
    raw: RawCluster,
    target: EventTarget,
    tag: ErrorTag,
    message: string,
    retrying: boolean,
  ): Promise<void> {
    const status = invalidSpecStatus(
      raw.metadata.generation,
      raw.status,
      tag,
      message,
      rfc3339(this.now()),
      retrying,
    );
    const changed = await this.writeStatus(raw, raw.metadata.namespace ?? 'default', status);
    if (!changed) return;
    if (retrying)
      await this.deps.events.warning(target, 'ReconcileFailed', 'Reconcile', `${tag}: ${message}`);
    else await this.deps.events.warning(target, tag, 'Validate', message);
  }

  private forget(namespace: string, name: string): void {
    this.redis?.forget(`${namespace}/${name}`);
    this.namespaceDeleting.delete(`${namespace}/${name}`);
    for (const k of [...this.appliedHashes.keys()]) {
      if (!k.startsWith(`${namespace}/`)) continue;
      const objName = k.slice(k.lastIndexOf('/') + 1);
      if (objName === name || objName.startsWith(`${name}-`)) this.appliedHashes.delete(k);
    }
    for (const k of [...this.secretsEnsured.keys()]) {
      if (k.startsWith(`${namespace}/${name}-`)) this.secretsEnsured.delete(k);
    }
  }
}

export function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
