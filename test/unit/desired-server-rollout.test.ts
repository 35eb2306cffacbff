import { describe, expect, it } from 'vitest';
import { buildServerDeployment } from '../../operator/desired/server.js';
import { buildServerTuning } from '../../operator/desired/tuning.js';
import { clusterFrom, manifest } from './helpers.js';

interface Deployment {
  spec: {
    strategy: { rollingUpdate: { maxSurge: unknown; maxUnavailable: unknown } };
    template: { spec: { containers: { lifecycle?: { preStop: unknown } }[] } };
  };
}

function deployment(spec: Record<string, unknown> = {}): Deployment {
  const cluster = clusterFrom(manifest(spec));
  return buildServerDeployment(cluster, buildServerTuning(cluster)) as unknown as Deployment;
}

describe('server rollout parameters', () => {
  it('never lets capacity dip: surge first, no pod unavailable', () => {
    expect(deployment().spec.strategy.rollingUpdate).toEqual({
      maxSurge: '25%',
      maxUnavailable: 0,
    });
  });

  it('waits in preStop until the gateway stopped sending new sessions, within the grace period', () => {
    expect(deployment().spec.template.spec.containers[0]!.lifecycle).toEqual({
      preStop: { httpGet: { path: '/prestop?quietMs=2000&maxMs=5000', port: 'ops' } },
    });
    // A short spare time shortens the wait (and its quiet period) instead of eating the drain.
    expect(
      deployment({ terminationGracePeriodSeconds: 23, socketio: { drainSeconds: 20 } }).spec
        .template.spec.containers[0]!.lifecycle,
    ).toEqual({
      preStop: { httpGet: { path: '/prestop?quietMs=1000&maxMs=2000', port: 'ops' } },
    });
    expect(
      deployment({ terminationGracePeriodSeconds: 21, socketio: { drainSeconds: 20 } }).spec
        .template.spec.containers[0]!.lifecycle,
    ).toBeUndefined();
  });
});
