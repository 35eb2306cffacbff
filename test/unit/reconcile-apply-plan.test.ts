import { describe, expect, it } from 'vitest';
import {
  APPLIED_HASH_ANNOTATION,
  containsFields,
  decideApply,
  foreignEditOfOurFields,
  memoAfterSkip,
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

describe('decideApply', () => {
  const prepared = prepareForApply(cm({ a: '1' }), 'ns', 'demo');
  const hash = prepared.metadata.annotations![APPLIED_HASH_ANNOTATION]!;
  const live = (
    h: string | undefined,
    generation?: number,
    uid = 'obj-1',
  ): { metadata: { uid: string; generation?: number; annotations: Record<string, string> } } => ({
    metadata: {
      uid,
      ...(generation !== undefined ? { generation } : {}),
      annotations: h ? { [APPLIED_HASH_ANNOTATION]: h } : {},
    },
  });

  it('creates what does not exist and updates what carries another hash', () => {
    expect(decideApply(prepared, undefined, undefined)).toBe('create');
    expect(decideApply(prepared, live('old'), undefined)).toBe('update');
    expect(decideApply(prepared, live(undefined), undefined)).toBe('update');
  });

  it('skips an object that already carries the hash (zero writes when nothing changed)', () => {
    expect(decideApply(prepared, live(hash, 3), undefined)).toBe('skip');
    expect(decideApply(prepared, live(hash, 3), { hash, uid: 'obj-1', generation: 3 })).toBe(
      'skip',
    );
  });

  it('skips a stale cache entry right after our own apply (no duplicate write)', () => {
    expect(decideApply(prepared, live('old', 2), { hash, uid: 'obj-1', generation: 3 })).toBe(
      'skip',
    );
    // ...but not when the object was replaced by another one with the same name.
    expect(
      decideApply(prepared, live('old', 1, 'obj-2'), { hash, uid: 'obj-1', generation: 3 }),
    ).toBe('update');
  });

  it('re-applies when someone changed the spec by hand (generation moved past ours)', () => {
    expect(decideApply(prepared, live(hash, 4), { hash, uid: 'obj-1', generation: 3 })).toBe(
      'correct-drift',
    );
    expect(
      decideApply(prepared, live(hash, 4, 'obj-2'), { hash, uid: 'obj-1', generation: 3 }),
    ).toBe('skip');
  });

  it('re-applies a kind without a generation when a field we set has another value', () => {
    const memo = { hash, uid: 'obj-1', generation: undefined };
    const withData = (
      data: Record<string, string>,
    ): ReturnType<typeof live> & { data: object } => ({
      ...live(hash, undefined),
      data,
    });
    expect(decideApply(prepared, withData({ a: '1' }), memo)).toBe('skip');
    // A key someone else added is theirs to keep: server-side apply would leave it too.
    expect(decideApply(prepared, withData({ a: '1', extra: 'x' }), undefined)).toBe('skip');
    expect(decideApply(prepared, withData({ a: 'edited' }), memo)).toBe('correct-drift');
    expect(decideApply(prepared, withData({}), undefined)).toBe('correct-drift');
    // The version our own apply returned is never re-applied: the API server may have
    // normalised a value, and comparing again would write forever.
    const normalised = {
      ...withData({ a: '01' }),
      metadata: { ...live(hash).metadata, resourceVersion: '7' },
    };
    expect(decideApply(prepared, normalised, { ...memo, resourceVersion: '7' })).toBe('skip');
    expect(decideApply(prepared, normalised, { ...memo, resourceVersion: '6' })).toBe(
      'correct-drift',
    );
  });

  it('memoAfterSkip adopts a matching live object and keeps a newer memo', () => {
    expect(memoAfterSkip(hash, live(hash, 5), undefined)).toEqual({
      hash,
      uid: 'obj-1',
      generation: 5,
    });
    const memo = { hash, uid: 'obj-1', generation: 6 };
    expect(memoAfterSkip(hash, live(hash, 5), memo)).toBe(memo);
    expect(memoAfterSkip(hash, live('old', 5), memo)).toBe(memo);
  });
});

describe('containsFields', () => {
  it('compares scalars exactly and objects by the wanted keys only', () => {
    expect(containsFields({ a: 1, b: 2 }, { a: 1 })).toBe(true);
    expect(containsFields({ a: 1 }, { a: '1' })).toBe(false);
    expect(containsFields({ a: { b: 1, c: 2 } }, { a: { b: 1 } })).toBe(true);
    expect(containsFields({ a: null }, { a: { b: 1 } })).toBe(false);
    expect(containsFields({}, { a: undefined })).toBe(true);
  });

  it('matches each wanted list element with some live element, as list merging keeps others', () => {
    const ports = [
      { name: 'http', port: 80, targetPort: 3000 },
      { name: 'ops', port: 9090 },
    ];
    const live = [
      { name: 'ops', port: 9090, protocol: 'TCP' },
      { name: 'http', port: 80, targetPort: 3000, protocol: 'TCP' },
      { name: 'added-by-someone', port: 1 },
    ];
    expect(containsFields(live, ports)).toBe(true);
    expect(containsFields([{ name: 'http', port: 81, targetPort: 3000 }, live[0]], ports)).toBe(
      false,
    );
    expect(containsFields({ name: 'http' }, ports)).toBe(false);
  });
});

describe('drift made while no operator ran (no memo): managedFields', () => {
  const deployment = prepareForApply(
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'demo-server', labels: { a: 'b' } },
      spec: {
        replicas: 2,
        template: { spec: { containers: [{ name: 'server', image: 'x' }] } },
      },
    },
    'ns',
    'demo',
  );
  const hash = deployment.metadata.annotations![APPLIED_HASH_ANNOTATION]!;
  const ours = {
    manager: 'socketfleet-operator',
    operation: 'Apply',
    fieldsV1: { 'f:spec': { 'f:replicas': {} } },
  };
  const live = (...managedFields: object[]): Parameters<typeof decideApply>[1] => ({
    metadata: {
      uid: 'd1',
      generation: 7,
      annotations: { [APPLIED_HASH_ANNOTATION]: hash },
      managedFields,
    },
  });

  it('re-applies after a restart when kubectl scaled the Deployment (scale subresource)', () => {
    const scaled = {
      manager: 'kubectl',
      operation: 'Update',
      subresource: 'scale',
      fieldsV1: { 'f:spec': { 'f:replicas': {} } },
    };
    expect(decideApply(deployment, live(ours, scaled), undefined)).toBe('correct-drift');
  });

  it('re-applies when an edit touched a list we set (a container, a NetworkPolicy rule)', () => {
    const edited = {
      manager: 'kubectl-edit',
      operation: 'Update',
      fieldsV1: {
        'f:spec': {
          'f:template': {
            'f:spec': { 'f:containers': { 'k:{"name":"server"}': { 'f:image': {} } } },
          },
        },
      },
    };
    expect(decideApply(deployment, live(ours, edited), undefined)).toBe('correct-drift');
  });

  it('leaves alone what others own beside us: controller annotations, status, extra labels', () => {
    const controller = {
      manager: 'kube-controller-manager',
      operation: 'Update',
      fieldsV1: {
        'f:metadata': { 'f:annotations': { 'f:deployment.kubernetes.io/revision': {} } },
      },
    };
    const status = {
      manager: 'kube-controller-manager',
      operation: 'Update',
      subresource: 'status',
      fieldsV1: { 'f:status': { 'f:replicas': {} }, 'f:spec': { 'f:replicas': {} } },
    };
    const label = {
      manager: 'kubectl-label',
      operation: 'Update',
      fieldsV1: { 'f:metadata': { 'f:labels': { 'f:team': {} } } },
    };
    expect(decideApply(deployment, live(ours, controller, status, label), undefined)).toBe('skip');
    expect(foreignEditOfOurFields({ spec: { replicas: 1 } }, [label], 'socketfleet-operator')).toBe(
      false,
    );
  });

  it('keeps the generation rule once this process has a memo', () => {
    const scaled = {
      manager: 'kubectl',
      operation: 'Update',
      subresource: 'scale',
      fieldsV1: { 'f:spec': { 'f:replicas': {} } },
    };
    expect(decideApply(deployment, live(ours, scaled), { hash, uid: 'd1', generation: 7 })).toBe(
      'skip',
    );
  });
});
