{{/*
The operator's permissions in the namespaces it watches: exactly the requests
operator/reconcile sends (see operator/reconcile/kinds.ts and kube-client.ts),
no wildcards. Reads go through list+watch caches, so there is no `get` on the
watched kinds; writes are server-side apply (PATCH), which needs `create` as
well as `patch` when the object does not exist yet. Shared by the ClusterRole
(all namespaces) and the per-namespace Roles (watchNamespaces set).
test/e2e/chart-rbac.test.ts runs the operator as this ServiceAccount and
removes rules (and single verbs) to show each one is needed.
*/}}
{{- define "socketfleet-operator.rules" -}}
# The RealtimeCluster cache lists and watches; reconcile reads from the cache.
- apiGroups: [socketfleet.dev]
  resources: [realtimeclusters]
  verbs: [list, watch]
# Owner references with blockOwnerDeletion (so deleting a cluster in the
# foreground waits for its objects) need this under the
# OwnerReferencesPermissionEnforcement admission plugin (on by default on
# OpenShift). It is checked by admission, never sent as a request.
- apiGroups: [socketfleet.dev]
  resources: [realtimeclusters/finalizers]
  verbs: [update]
# Conditions, ready counts and the scale selector: server-side apply of the status subresource.
- apiGroups: [socketfleet.dev]
  resources: [realtimeclusters/status]
  verbs: [patch]
# The autopilot sets spec.replicas through the scale subresource (spec.autoscaling).
- apiGroups: [socketfleet.dev]
  resources: [realtimeclusters/scale]
  verbs: [patch]
# Server and gateway Deployments, one StatefulSet per Redis shard: cached,
# server-side applied, and deleted when no longer desired (shards scaled in).
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [list, watch, create, patch, delete]
# Server/gateway/shard Services, Redis/server/nginx ConfigMaps: cached,
# server-side applied, deleted when no longer desired (shards scaled in,
# gateway.mode none). With spec.redis.tls the operator also lists the user's
# CA bundle ConfigMap by name (fieldSelector metadata.name): public data, read
# with this same list verb, so no get is needed.
- apiGroups: ['']
  resources: [services, configmaps]
  verbs: [list, watch, create, patch, delete]
# The servers' ServiceAccount: cached and server-side applied. Every cluster
# always has one, so the operator never deletes it (garbage collection does).
- apiGroups: ['']
  resources: [serviceaccounts]
  verbs: [list, watch, create, patch]
# The Redis ACL Secret and the client JWT key Secret: create only, "already
# exists" counts as done. No get, list or watch: the operator never reads a
# Secret, not even its own; it derives the Redis passwords again from the
# operator key, a file mounted into its pod (owner references garbage-collect
# the Secrets with the cluster).
- apiGroups: ['']
  resources: [secrets]
  verbs: [create]
# PodDisruptionBudgets of servers, gateway and shards: cached, applied, deleted when no longer desired.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
# NetworkPolicies: applied, and deleted when spec.networkPolicy.enabled turns false.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, watch, create, patch, delete]
# Redis pods: cached (IPs, shard and template revision) so the operator can form,
# heal and reshard the Redis Cluster; deleted one at a time to roll a Redis
# template change (replicas first, masters after a failover).
- apiGroups: ['']
  resources: [pods]
  verbs: [list, watch, delete]
# The gateway sync sidecar's Role grants get/list/watch on EndpointSlices;
# Kubernetes lets the operator create such a Role only while it holds these
# permissions itself (RBAC escalation prevention). The operator never reads them.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
# The gateway sync sidecar's Role and RoleBinding: cached, server-side
# applied, deleted when gateway.mode turns none.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [list, watch, create, patch, delete]
# events.k8s.io/v1 Events on RealtimeClusters (kubectl describe rtc); each is a new object.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [get, create]
{{- end }}

{{/* Leader election: one Lease in the release namespace, nothing else. */}}
{{- define "socketfleet-operator.leaseRules" -}}
# get to read the holder, create the first time, update (PUT with resourceVersion) to renew or take over.
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end }}
