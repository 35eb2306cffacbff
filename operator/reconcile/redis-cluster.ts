import type { Logger } from 'pino';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { LABEL_COMPONENT, LABEL_INSTANCE, LABEL_SHARD } from '../desired/labels.js';
import { resourceNames } from '../desired/names.js';
import { kubernetesRedisPods } from '../desired/redis.js';
import { redisTlsServerName } from '../desired/redis-tls.js';
import { planRedisCluster, type RedisPlan, type RedisPodView } from '../desired/redis-planner.js';
import type { KindCache } from './informers.js';
import type { AnyObject } from './kube-client.js';
import type { CaBundle } from './redis-ca.js';
import {
  RedisAdmin,
  type ObservedPod,
  type RedisAdminTls,
  type RedisLogin,
} from './redis-admin.js';

/** What the operator saw of one cluster's Redis this reconcile, and what it plans to do. */
export interface RedisObservation {
  plan: RedisPlan;
  views: RedisPodView[];
  /** Pod UIDs by name, so a rolling restart deletes exactly the pod it observed. */
  podUids: Map<string, string | undefined>;
}

interface PodLike extends AnyObject {
  status?: { podIP?: string };
}

/** A pod the operator cannot ask (no IP yet, or no CA to verify it): the planner's view of it. */
function notAnswering(p: { ref: ObservedPod['ref']; outdated: boolean }): RedisPodView {
  return { ref: p.ref, ip: undefined, nodes: undefined, masterLinkUp: false, outdated: p.outdated };
}

function planFor(cluster: RealtimeCluster, views: RedisPodView[]): RedisPlan {
  const { shards, replicasPerShard } = cluster.spec.redis;
  return planRedisCluster({ shards, replicasPerShard }, views);
}

/**
 * Keeps one admin connection set per cluster and turns the Pod and StatefulSet caches into the
 * planner's input: which Redis pods exist, their IPs, and whether they run an older template.
 */
export class RedisClusterManager {
  private readonly admins = new Map<string, { login: string; admin: RedisAdmin }>();
  /** Which of the logins to use per cluster: the next one after every node refused the last. */
  private readonly loginIndex = new Map<string, number>();

  constructor(
    private readonly caches: { pods: KindCache; statefulSets: KindCache | undefined },
    /**
     * The operator's Redis logins for the cluster with this UID (computed, never read), one per
     * operator key, current first.
     */
    private readonly logins: (clusterUid: string) => RedisLogin[],
    private readonly log: Logger,
    /** spec.redis.tls: the CA bundle from the user's ConfigMap (public; never a Secret). */
    private readonly caBundle?: (namespace: string, name: string, key: string) => Promise<CaBundle>,
  ) {}

  private admin(
    key: string,
    login: RedisLogin | undefined,
    tls: RedisAdminTls | undefined,
  ): RedisAdmin {
    // A new password, CA bundle or server name means new connections.
    const id = [login?.username, login?.password, tls?.serverName, tls?.ca].join('\0');
    const known = this.admins.get(key);
    if (known && known.login === id) return known.admin;
    known?.admin.close();
    const admin = new RedisAdmin({ ...login, tls, timeoutMs: 2000 });
    this.admins.set(key, { login: id, admin });
    return admin;
  }

  /** The Redis pods of every shard that has a StatefulSet, as the planner needs them. */
  pods(
    cluster: RealtimeCluster,
    namespace: string,
  ): { pods: ObservedPod[]; uids: Map<string, string | undefined> } {
    const name = cluster.metadata.name;
    const names = resourceNames(name);
    const withNs = { ...cluster, metadata: { ...cluster.metadata, namespace } };
    const uids = new Map<string, string | undefined>();
    const out: ObservedPod[] = [];
    for (const raw of this.caches.pods.list(namespace)) {
      const pod = raw as PodLike;
      const labels = pod.metadata.labels ?? {};
      if (labels[LABEL_INSTANCE] !== name || labels[LABEL_COMPONENT] !== 'redis') continue;
      if (pod.metadata.deletionTimestamp) continue;
      const shard = Number(labels[LABEL_SHARD]);
      if (!Number.isInteger(shard)) continue;
      const sts = this.caches.statefulSets?.get(namespace, names.redisShard(shard));
      if (!sts) continue;
      const stsStatus = sts.status as { updateRevision?: string } | undefined;
      const ordinal = Number(pod.metadata.name.slice(names.redisShard(shard).length + 1));
      if (!Number.isInteger(ordinal)) continue;
      const ref = kubernetesRedisPods(withNs, [shard]).find((r) => r.ordinal === ordinal) ?? {
        ...kubernetesRedisPods(withNs, [shard])[0]!,
        ordinal,
        pod: pod.metadata.name,
        host: `${pod.metadata.name}.${names.redisShard(shard)}.${namespace}.svc`,
      };
      const revision = labels['controller-revision-hash'];
      const want = stsStatus?.updateRevision;
      out.push({
        ref,
        ip: pod.status?.podIP,
        outdated: revision !== undefined && want !== undefined && revision !== want,
      });
      uids.set(pod.metadata.name, pod.metadata.uid);
    }
    return { pods: out, uids };
  }

  async observe(
    cluster: RealtimeCluster,
    namespace: string,
    clusterUid: string,
  ): Promise<RedisObservation> {
    const key = `${namespace}/${cluster.metadata.name}`;
    const { pods, uids } = this.pods(cluster, namespace);
    const logins = cluster.spec.redis.auth.enabled ? this.logins(clusterUid) : [];
    const index = (this.loginIndex.get(key) ?? 0) % Math.max(1, logins.length);
    const tls = await this.tls(cluster, namespace);
    if (tls && !tls.ok) {
      // Without the CA the operator will not talk to the nodes (an unverified TLS connection
      // would hand its password to whoever answers): report why, and plan nothing.
      const views = pods.map(notAnswering);
      const plan = planFor(cluster, views);
      return { plan: { ...plan, steps: [], reason: tls.problem }, views, podUids: uids };
    }
    const admin = this.admin(key, logins[index], tls?.value);
    // Pods without an IP are not up yet; the planner sees them as not answering.
    const views = await admin.observe(pods.filter((p) => p.ip !== undefined));
    // Every node refused this password: the cluster was made under the other operator key.
    if (logins.length > 1 && admin.everyLoginRefused()) {
      this.loginIndex.set(key, (index + 1) % logins.length);
    }
    views.push(...pods.filter((p) => p.ip === undefined).map(notAnswering));
    return { plan: planFor(cluster, views), views, podUids: uids };
  }

  /** spec.redis.tls as the operator's connections need it; undefined without TLS. */
  private async tls(
    cluster: RealtimeCluster,
    namespace: string,
  ): Promise<{ ok: true; value: RedisAdminTls } | { ok: false; problem: string } | undefined> {
    const t = cluster.spec.redis.tls;
    if (!t) return undefined;
    const serverName = redisTlsServerName({
      ...cluster,
      metadata: { ...cluster.metadata, namespace },
    })!;
    if (!this.caBundle) {
      return { ok: false, problem: 'spec.redis.tls: this operator cannot read CA bundles.' };
    }
    const ca = await this.caBundle(namespace, t.caConfigMap.name, t.caConfigMap.key);
    return ca.ok ? { ok: true, value: { ca: ca.pem, serverName } } : ca;
  }

  /** Carries out the plan's steps; failures are logged and the next reconcile plans again. */
  async act(
    cluster: RealtimeCluster,
    namespace: string,
    obs: RedisObservation,
    deletePod: (name: string, uid: string | undefined) => Promise<void>,
  ): Promise<string[]> {
    const key = `${namespace}/${cluster.metadata.name}`;
    const admin = this.admins.get(key)?.admin;
    if (!admin) return [];
    const byPod = new Map(obs.views.map((v) => [v.ref.pod, v]));
    const done: string[] = [];
    for (const step of obs.plan.steps) {
      try {
        await admin.execute(step, byPod, (pod) => deletePod(pod, obs.podUids.get(pod)));
        done.push(step.kind);
      } catch (err) {
        this.log.warn(
          {
            cluster: key,
            step: step.kind,
            detail: err instanceof Error ? err.message : String(err),
          },
          'redis step failed; planning again next reconcile',
        );
      }
    }
    return done;
  }

  forget(key: string): void {
    this.loginIndex.delete(key);
    this.admins.get(key)?.admin.close();
    this.admins.delete(key);
  }

  close(): void {
    for (const { admin } of this.admins.values()) admin.close();
    this.admins.clear();
  }
}
