import { z } from 'zod';
import {
  GROUP,
  KIND,
  PLURAL,
  RealtimeClusterSpecSchema,
  RealtimeClusterStatusSchema,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './realtimecluster.js';

export type JsonSchema = Record<string, unknown>;

export const CRD_NAME = `${PLURAL}.${GROUP}`;

function isObject(v: unknown): v is JsonSchema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** zod's unbounded int bounds say nothing to a user and only clutter `kubectl explain`. */
function isSafeIntBound(v: unknown): boolean {
  return v === Number.MAX_SAFE_INTEGER || v === Number.MIN_SAFE_INTEGER;
}

/**
 * Rewrites a JSON Schema node into the structural subset the API server accepts: every node
 * typed, no propertyNames or additionalProperties:false, int-or-string in the form kubectl and
 * controller-gen use, and free-form Kubernetes types kept by x-kubernetes-preserve-unknown-fields.
 */
export function toStructural(node: JsonSchema): JsonSchema {
  if (node['x-kubernetes-int-or-string'] === true && Array.isArray(node.anyOf)) {
    const stringBranch = node.anyOf.find((b) => isObject(b) && b.type === 'string') as
      JsonSchema | undefined;
    const out: JsonSchema = {};
    if (node.description !== undefined) out.description = node.description;
    if (node.default !== undefined) out.default = node.default;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    if (stringBranch?.pattern !== undefined) out.pattern = stringBranch.pattern;
    out['x-kubernetes-int-or-string'] = true;
    return ordered(out);
  }

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
      case 'propertyNames':
      case 'id':
        break;
      case 'minimum':
      case 'maximum':
        if (!isSafeIntBound(value)) out[key] = value;
        break;
      case 'properties':
        out.properties = Object.fromEntries(
          Object.entries(value as Record<string, JsonSchema>).map(([k, v]) => [k, toStructural(v)]),
        );
        break;
      case 'items':
        out.items = toStructural(value as JsonSchema);
        break;
      case 'additionalProperties':
        if (value === false) break;
        if (value === true || (isObject(value) && Object.keys(value).length === 0)) {
          out['x-kubernetes-preserve-unknown-fields'] = true;
        } else if (isObject(value)) {
          out.additionalProperties = toStructural(value);
        }
        break;
      default:
        out[key] = value;
    }
  }
  // A node with no type is only structural when it keeps whatever it holds.
  if (out.type === undefined && out['x-kubernetes-int-or-string'] !== true) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  return ordered(out);
}

const KEY_ORDER = ['description', 'type', 'default'];

/** Description first, then type and default: the order a reader of the YAML wants. */
function ordered(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const k of KEY_ORDER) if (k in node) out[k] = node[k];
  for (const [k, v] of Object.entries(node)) if (!KEY_ORDER.includes(k)) out[k] = v;
  return out;
}

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }));
}

export function specSchema(): JsonSchema {
  return jsonSchemaOf(RealtimeClusterSpecSchema);
}

export function buildCrd(): JsonSchema {
  const spec = specSchema();
  spec.default = {};
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'socketfleet' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: ['socketfleet'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
            { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
            { name: 'Shards', type: 'integer', jsonPath: '.spec.redis.shards' },
            { name: 'Redis', type: 'string', jsonPath: '.status.redis.clusterState' },
            { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              description:
                'A Socket.IO cluster: sharded Redis, tuned Socket.IO servers and a sticky nginx gateway, kept in shape by the socketfleet operator.',
              type: 'object',
              properties: {
                apiVersion: {
                  description: 'APIVersion of this object: socketfleet.dev/v1alpha1.',
                  type: 'string',
                },
                kind: { description: 'Kind of this object: RealtimeCluster.', type: 'string' },
                metadata: { type: 'object' },
                spec,
                status: jsonSchemaOf(RealtimeClusterStatusSchema),
              },
            },
          },
        },
      ],
    },
  };
}
