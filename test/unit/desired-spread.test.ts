import { describe, expect, it } from 'vitest';
import { buildGatewayDeployment } from '../../operator/desired/gateway.js';
import { buildServerDeployment } from '../../operator/desired/server.js';
import { buildServerTuning } from '../../operator/desired/tuning.js';
import { clusterFrom, manifest } from './helpers.js';

interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    affinity?: Record<string, unknown>;
    topologySpreadConstraints?: Record<string, unknown>[];
  };
}

function serverTemplate(spec: Record<string, unknown> = {}): PodTemplate {
  const cluster = clusterFrom(manifest(spec));
  const d = buildServerDeployment(cluster, buildServerTuning(cluster)) as unknown as {
    spec: { template: PodTemplate };
  };
  return d.spec.template;
}

const zoneSpread = {
  maxSkew: 2,
  topologyKey: 'topology.kubernetes.io/zone',
  whenUnsatisfiable: 'DoNotSchedule',
  labelSelector: { matchLabels: { 'app.kubernetes.io/component': 'server' } },
};

describe('server spreading', () => {
  it('prefers one server per node by default, counting only this cluster’s servers', () => {
    const t = serverTemplate();
    expect(t.spec.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'socketfleet',
            'app.kubernetes.io/instance': 'demo',
            'app.kubernetes.io/component': 'server',
          },
        },
        matchLabelKeys: ['pod-template-hash'],
      },
    ]);
    // The selector must match the pods it spreads, or the constraint counts nothing.
    const selector = (
      t.spec.topologySpreadConstraints![0]!.labelSelector as {
        matchLabels: Record<string, string>;
      }
    ).matchLabels;
    for (const [k, v] of Object.entries(selector)) expect(t.metadata.labels[k], k).toBe(v);
  });

  it('replaces the default with the user’s list, and an empty list turns spreading off', () => {
    expect(
      serverTemplate({ topologySpreadConstraints: [zoneSpread] }).spec.topologySpreadConstraints,
    ).toEqual([zoneSpread]);
    expect(
      serverTemplate({ topologySpreadConstraints: [] }).spec.topologySpreadConstraints,
    ).toEqual([]);
  });

  it('keeps the default next to a user affinity, which constrains nodes rather than spreading', () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'pool', operator: 'In', values: ['rt'] }] },
          ],
        },
      },
    };
    const t = serverTemplate({ affinity });
    expect(t.spec.affinity).toEqual(affinity);
    expect(t.spec.topologySpreadConstraints).toHaveLength(1);
  });
});

describe('gateway spreading', () => {
  it('keeps its preferred anti-affinity over nodes', () => {
    const d = buildGatewayDeployment(clusterFrom(manifest())) as unknown as {
      spec: { template: PodTemplate };
    };
    expect(JSON.stringify(d.spec.template.spec.affinity)).toContain(
      '"topologyKey":"kubernetes.io/hostname"',
    );
  });
});
