import { describe, expect, it } from 'vitest';
import {
  APPLIED_HASH_ANNOTATION,
  needsApply,
  objectKey,
  ownedBy,
  prepareForApply,
} from '../../operator/reconcile/apply-plan.js';
import type { KubeObject } from '../../operator/desired/types.js';

const cm = (data: Record<string, string>, annotations?: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name: 'demo-server-config',
    labels: { 'app.kubernetes.io/instance': 'demo' },
    ...(annotations ? { annotations } : {}),
    ownerReferences: [
      {
        apiVersion: 'socketfleet.dev/v1alpha1',
        kind: 'RealtimeCluster',
        name: 'demo',
        uid: 'u1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  },
  data,
});

describe('prepareForApply', () => {
  it('sets the namespace, the managed-by label and a hash annotation', () => {
    const p = prepareForApply(cm({ a: '1' }), 'team-a', 'demo');
    expect(p.metadata.namespace).toBe('team-a');
    expect(p.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'socketfleet-operator',
      'app.kubernetes.io/instance': 'demo',
    });
    expect(p.metadata.annotations?.[APPLIED_HASH_ANNOTATION]).toMatch(/^[0-9a-f]{32}$/);
  });

  it('gives the same hash for the same content and a different one for any change', () => {
    const a = prepareForApply(cm({ a: '1', b: '2' }), 'ns', 'demo');
    const b = prepareForApply(cm({ b: '2', a: '1' }), 'ns', 'demo');
    const c = prepareForApply(cm({ a: '1', b: '3' }), 'ns', 'demo');
    const d = prepareForApply(cm({ a: '1', b: '2' }), 'other', 'demo');
    const hash = (o: KubeObject): string | undefined =>
      o.metadata.annotations?.[APPLIED_HASH_ANNOTATION];
    expect(hash(a)).toBe(hash(b));
    expect(hash(c)).not.toBe(hash(a));
    expect(hash(d)).not.toBe(hash(a));
  });

  it('ignores a stale hash annotation in its input (re-preparing is stable)', () => {
    const once = prepareForApply(cm({ a: '1' }), 'ns', 'demo');
    const twice = prepareForApply(once, 'ns', 'demo');
    expect(twice).toEqual(once);
  });

  it('keeps other annotations', () => {
    const p = prepareForApply(cm({ a: '1' }, { 'example.com/x': 'y' }), 'ns', 'demo');
    expect(p.metadata.annotations?.['example.com/x']).toBe('y');
  });
});

describe('needsApply', () => {
  const prepared = prepareForApply(cm({ a: '1' }), 'ns', 'demo');
  it('is true when the object does not exist', () => {
    expect(needsApply(prepared, undefined)).toBe(true);
  });
  it('is false when the live object carries the same hash (a no-op reconcile writes nothing)', () => {
    const live = { metadata: { name: 'x', annotations: { ...prepared.metadata.annotations } } };
    expect(needsApply(prepared, live)).toBe(false);
  });
  it('is true when the desired content changed', () => {
    const live = { metadata: { name: 'x', annotations: { ...prepared.metadata.annotations } } };
    expect(needsApply(prepareForApply(cm({ a: '2' }), 'ns', 'demo'), live)).toBe(true);
  });
  it('is true when the live object lost its annotation', () => {
    expect(needsApply(prepared, { metadata: { name: 'x' } })).toBe(true);
  });
});

describe('objectKey and ownedBy', () => {
  it('keys objects by API group, kind and name', () => {
    expect(
      objectKey({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'demo-redis-2' } }),
    ).toBe('apps/StatefulSet/demo-redis-2');
    expect(objectKey({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } })).toBe(
      '/Service/s',
    );
  });
  it('matches owner references by uid', () => {
    expect(ownedBy({ metadata: { ownerReferences: [{ uid: 'u1' }] } }, 'u1')).toBe(true);
    expect(ownedBy({ metadata: { ownerReferences: [{ uid: 'u2' }] } }, 'u1')).toBe(false);
    expect(ownedBy({ metadata: {} }, 'u1')).toBe(false);
  });
});
