/** The shapes every builder shares. Kept free of any Kubernetes client types so builders stay pure. */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

/** A Socket.IO pod as the gateway reaches it. */
export interface Endpoint {
  ip: string;
  port: number;
  /**
   * The pod is leaving (terminating, or gone within a grace period): no new session goes to it.
   * Only ip_hash keeps such a server in its list, marked `down`, so the others keep their place.
   */
  down?: boolean;
}

/** What the reconciler observed in the cluster; builders take nothing else from the outside. */
export interface ObservedFacts {
  /** Shards beyond spec.redis.shards that still hold hash slots, so must keep running. */
  retainedShards?: number[];
  /**
   * Shards whose StatefulSet keeps more pods than replicasPerShard + 1, because a pod above that
   * is still the shard's master (the operator fails over first, then lets it go).
   */
  retainedNodes?: { shard: number; nodes: number }[];
}

export interface DesiredState {
  objects: KubeObject[];
  /** Things the user asked for that cannot be honoured as written, in one sentence each. */
  warnings: string[];
}
