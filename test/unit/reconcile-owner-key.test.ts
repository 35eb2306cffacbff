import { describe, expect, it } from 'vitest';
import { ownerKey } from '../../operator/reconcile/controller.js';
import type { AnyObject } from '../../operator/reconcile/kube-client.js';

const obj = (metadata: AnyObject['metadata']): AnyObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata,
});

describe('ownerKey', () => {
  it('maps an owned object to its RealtimeCluster through the owner reference', () => {
    const o = obj({
      name: 'chat-server-config',
      namespace: 'rt',
      labels: { 'app.kubernetes.io/instance': 'other' },
      ownerReferences: [
        { apiVersion: 'socketfleet.dev/v1alpha1', kind: 'RealtimeCluster', name: 'chat', uid: 'u' },
      ],
    });
    expect(ownerKey(o)).toBe('rt/chat');
  });

  it('falls back to the instance label (EndpointSlices are owned by their Service)', () => {
    const slice = obj({
      name: 'chat-server-abcde',
      namespace: 'rt',
      labels: { 'app.kubernetes.io/instance': 'chat', 'kubernetes.io/service-name': 'chat-server' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'chat-server', uid: 'u' }],
    });
    expect(ownerKey(slice)).toBe('rt/chat');
  });

  it('ignores objects that belong to no cluster', () => {
    expect(ownerKey(obj({ name: 'x', namespace: 'rt' }))).toBeUndefined();
    expect(
      ownerKey(obj({ name: 'x', labels: { 'app.kubernetes.io/instance': 'chat' } })),
    ).toBeUndefined();
    const foreignOwner = obj({
      name: 'x',
      namespace: 'rt',
      ownerReferences: [
        { apiVersion: 'example.com/v1', kind: 'RealtimeCluster', name: 'y', uid: 'u' },
      ],
    });
    expect(ownerKey(foreignOwner)).toBeUndefined();
  });
});
