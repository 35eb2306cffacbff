import { z } from 'zod';

/**
 * spec.redis.tls: TLS on every connection to and between the operator-run Redis nodes. The
 * private key stays in a Secret that only the Redis pods mount; everything that connects to a
 * node (servers, the operator, the other nodes) trusts one public CA bundle from a ConfigMap, so
 * the operator can verify the nodes without ever reading a Secret.
 */

const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export const REDIS_TLS_EXTERNAL_MESSAGE =
  'applies to operator-run shards only; for an external cluster set spec.redis.external.tls instead';

export const REDIS_TLS_IMMUTABLE_MESSAGE =
  'cannot be turned on or off on an existing cluster: nodes with and without TLS cannot form one Redis Cluster; create a new RealtimeCluster instead';

export const RedisTlsSchema = z
  .object({
    secretName: z
      .string()
      .regex(K8S_NAME, 'must be a Secret name')
      .max(253)
      .describe(
        "Secret of type kubernetes.io/tls (tls.crt and tls.key) in the cluster's namespace, e.g. from a cert-manager Certificate: the certificate every Redis node presents, to clients and to the other nodes. Its dnsNames must include serverName. Mounted into the Redis pods only; the operator never reads it.",
      ),
    caConfigMap: z
      .object({
        name: z
          .string()
          .regex(K8S_NAME, 'must be a ConfigMap name')
          .max(253)
          .describe("Name of the ConfigMap, in the cluster's namespace."),
        key: z
          .string()
          .regex(/^[-._a-zA-Z0-9]+$/, 'must be a ConfigMap data key')
          .default('ca.crt')
          .describe('Key that holds the PEM CA bundle.'),
      })
      .strict()
      .describe(
        "ConfigMap with the PEM CA bundle that signed the nodes' certificates (a trust-manager Bundle, or cert-manager's ca.crt published as a ConfigMap). The Redis nodes (for the cluster bus and replication), the servers and the operator trust this bundle alone. It is public: the operator reads it with the ConfigMap list permission it already has. List the old and the new CA together while rotating the CA.",
      ),
    serverName: z
      .string()
      .regex(
        /^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
        'must be a DNS name such as chat-redis.default.svc',
      )
      .max(253)
      .optional()
      .describe(
        'The name the servers and the operator check every node certificate against (one name for all nodes, so adding a shard needs no new certificate). <name>-redis.<namespace>.svc when unset.',
      ),
  })
  .strict()
  .describe(
    "Serve Redis over TLS only: each node listens with TLS on 6379 (no plaintext port), the cluster bus and replication use TLS, and the servers and the operator connect with TLS, checking the certificate against caConfigMap and serverName. Clients are not asked for certificates (tls-auth-clients optional): every login is an ACL user's password, and the NetworkPolicy admits only the shard pods to the bus. Redis reads its certificate files only at start-up: after the Secret is renewed, `kubectl rollout restart statefulset -l app.kubernetes.io/instance=<name>,app.kubernetes.io/component=redis` and the operator restarts the nodes one at a time, replicas first, failing each master over to an updated replica.",
  );

export type RedisTls = z.infer<typeof RedisTlsSchema>;
