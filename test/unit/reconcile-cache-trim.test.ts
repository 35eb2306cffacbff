import { describe, expect, it } from 'vitest';
import {
  APPLIED_HASH_ANNOTATION,
  decideApply,
  prepareForApply,
} from '../../operator/reconcile/apply-plan.js';
import { trimForCache } from '../../operator/reconcile/cache-trim.js';
import type { AnyObject } from '../../operator/reconcile/kube-client.js';

const OURS = 'socketfleet-operator';

const deployment = prepareForApply(
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'demo-server', labels: { a: 'b' } },
    spec: { replicas: 2, template: { spec: { containers: [{ name: 'server', image: 'x' }] } } },
  },
  'ns',
  'demo',
);
const hash = deployment.metadata.annotations![APPLIED_HASH_ANNOTATION]!;

const entries = {
  ours: {
    manager: OURS,
    operation: 'Apply',
    fieldsV1: { 'f:spec': { 'f:replicas': {}, 'f:template': {} } },
  },
  status: {
    manager: 'kube-controller-manager',
    operation: 'Update',
    subresource: 'status',
    fieldsV1: { 'f:status': { 'f:replicas': {} } },
  },
  revision: {
    manager: 'kube-controller-manager',
    operation: 'Update',
    fieldsV1: { 'f:metadata': { 'f:annotations': { 'f:deployment.kubernetes.io/revision': {} } } },
  },
  scaled: {
    manager: 'kubectl',
    operation: 'Update',
    subresource: 'scale',
    fieldsV1: { 'f:spec': { 'f:replicas': {} } },
  },
  otherApply: {
    manager: 'someone',
    operation: 'Apply',
    fieldsV1: { 'f:spec': { 'f:replicas': {} } },
  },
};

function liveDeployment(...managedFields: object[]): AnyObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'demo-server',
      namespace: 'ns',
      uid: 'd1',
      generation: 7,
      resourceVersion: '42',
      annotations: { [APPLIED_HASH_ANNOTATION]: hash },
      managedFields,
    } as AnyObject['metadata'],
    spec: { replicas: 2 },
    status: { readyReplicas: 2 },
  };
}

describe('trimForCache', () => {
  it('keeps only the managedFields entries decideApply reads: other managers updating spec-side fields', () => {
    const e = entries;
    const trimmed = trimForCache(
      'Deployment',
      liveDeployment(e.ours, e.status, e.revision, e.scaled, e.otherApply),
      OURS,
    );
    expect((trimmed.metadata as { managedFields?: unknown }).managedFields).toEqual([
      e.revision,
      e.scaled,
    ]);
    expect(trimmed.spec).toEqual({ replicas: 2 });
    expect(trimmed.status).toEqual({ readyReplicas: 2 });
    const { managedFields: _m, ...meta } = trimmed.metadata as { managedFields?: unknown };
    void _m;
    expect(meta).toEqual({
      name: 'demo-server',
      namespace: 'ns',
      uid: 'd1',
      generation: 7,
      resourceVersion: '42',
      annotations: { [APPLIED_HASH_ANNOTATION]: hash },
    });
  });

  it('drops managedFields entirely when nothing in them could be a hand edit', () => {
    const trimmed = trimForCache('Deployment', liveDeployment(entries.ours, entries.status), OURS);
    expect('managedFields' in trimmed.metadata).toBe(false);
  });

  it('changes no apply decision: every combination decides the same on the trimmed object', () => {
    const all = Object.values(entries);
    for (let mask = 0; mask < 1 << all.length; mask++) {
      const picked = all.filter((_, i) => mask & (1 << i));
      const live = liveDeployment(...picked);
      const trimmed = trimForCache('Deployment', live, OURS);
      for (const memo of [
        undefined,
        { hash, uid: 'd1', generation: 7 },
        { hash, uid: 'd1', generation: 6 },
      ]) {
        expect(decideApply(deployment, trimmed, memo)).toBe(decideApply(deployment, live, memo));
      }
    }
  });

  it('keeps of a pod only what the Redis planner and the autopilot read', () => {
    const pod: AnyObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'demo-redis-0-1',
        namespace: 'ns',
        uid: 'p1',
        resourceVersion: '9',
        labels: { 'controller-revision-hash': 'r1' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 's', uid: 's1' }],
        deletionTimestamp: '2026-01-01T00:00:00Z',
        annotations: { big: 'x'.repeat(1000) },
        managedFields: [entries.ours],
      } as AnyObject['metadata'],
      spec: { containers: [{ name: 'redis', image: 'redis' }] },
      status: {
        phase: 'Running',
        podIP: '10.0.0.7',
        hostIP: '10.1.0.1',
        conditions: [
          { type: 'PodScheduled', status: 'True' },
          { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' },
        ],
        containerStatuses: [{ name: 'redis', ready: true }],
      },
    };
    expect(trimForCache('Pod', pod, OURS)).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'demo-redis-0-1',
        namespace: 'ns',
        uid: 'p1',
        resourceVersion: '9',
        labels: { 'controller-revision-hash': 'r1' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 's', uid: 's1' }],
        deletionTimestamp: '2026-01-01T00:00:00Z',
      },
      status: {
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
    const pending: AnyObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } };
    expect(trimForCache('Pod', pending, OURS)).toEqual(pending);
  });
});
