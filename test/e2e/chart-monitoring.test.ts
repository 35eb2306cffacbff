// Every metric the chart's alerts and dashboard query is exported by a target the chart scrapes:
// the chart rendered by helm with its monitoring switched on, the metric names taken from every
// PromQL expression, and each one traced to a real registry (the operator's or the server's)
// and to a ServiceMonitor/PodMonitor whose selector and port match the objects that serve it.
// kube-state-metrics series are the one documented external source. About 2 s.
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { buildDesired } from '../../operator/desired/index.js';
import { createMetrics as operatorMetrics } from '../../operator/reconcile/metrics.js';
import { createMetrics as serverMetrics } from '../../server-image/src/metrics.js';
import { examplesDir, helmTemplate, type KubeDoc } from '../lint/tools.js';

/** Series the chart expects from kube-state-metrics (README: Monitoring), not from its own targets. */
const EXTERNAL = /^kube_/;
const METRIC = /\b(?:socketfleet|kube|nginx|redis|nodejs|process)_[a-zA-Z0-9_:]*/g;

let docs: KubeDoc[];

async function names(registry: Registry): Promise<Set<string>> {
  const out = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    out.add(m.name);
    if (String(m.type) === 'histogram')
      for (const s of ['_bucket', '_sum', '_count']) out.add(m.name + s);
  }
  return out;
}

function exprs(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const rule = docs.find((d) => d.kind === 'PrometheusRule') as unknown as {
    spec: { groups: { rules: { alert: string; expr: string }[] }[] };
  };
  for (const g of rule.spec.groups)
    for (const r of g.rules) out.push({ where: `alert ${r.alert}`, expr: r.expr });
  const dashboards = docs.filter(
    (d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-dashboard'),
  ) as unknown as { data: Record<string, string> }[];
  for (const cm of dashboards) {
    for (const [file, json] of Object.entries(cm.data)) {
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          const o = v as Record<string, unknown>;
          if (typeof o.expr === 'string') out.push({ where: `dashboard ${file}`, expr: o.expr });
          Object.values(o).forEach(walk);
        }
      };
      walk(JSON.parse(json));
    }
  }
  return out;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('chart monitoring', () => {
  beforeAll(async () => {
    ({ docs } = await helmTemplate({
      values: {
        metrics: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    }));
  });

  it('scrapes a target that exports every metric an alert or the dashboard uses', async () => {
    const operator = await names(operatorMetrics().registry);
    const server = await names(serverMetrics().registry);

    // The operator: its ServiceMonitor selects the metrics Service, on a port that Service has.
    const sm = docs.find((d) => d.kind === 'ServiceMonitor') as unknown as
      | {
          spec: {
            selector: { matchLabels: Record<string, string> };
            endpoints: { port: string }[];
          };
        }
      | undefined;
    const operatorScraped =
      sm !== undefined &&
      docs.some(
        (d) =>
          d.kind === 'Service' &&
          matches(sm.spec.selector.matchLabels, d.metadata.labels ?? {}) &&
          (d as unknown as { spec: { ports: { name: string }[] } }).spec.ports.some((p) =>
            sm.spec.endpoints.some((e) => e.port === p.name),
          ),
      );

    // The servers: a PodMonitor selects the pods the operator builds, on a named container port.
    const parsed = parseRealtimeCluster(
      parse(readFileSync(join(examplesDir, 'minimal.yaml'), 'utf8')),
    );
    if (!parsed.ok) throw new Error(parsed.problems.join('; '));
    const deployment = buildDesired(parsed.cluster).objects.find(
      (o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-server'),
    ) as unknown as {
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { ports?: { name: string }[] }[] };
        };
      };
    };
    const pod = deployment.spec.template;
    const pm = docs.find((d) => d.kind === 'PodMonitor') as unknown as
      | {
          spec: {
            selector: { matchLabels: Record<string, string> };
            podMetricsEndpoints: { port: string; path: string }[];
          };
        }
      | undefined;
    const serverScraped =
      pm !== undefined &&
      matches(pm.spec.selector.matchLabels, pod.metadata.labels) &&
      pm.spec.podMetricsEndpoints.some(
        (e) =>
          e.path === '/metrics' &&
          pod.spec.containers.some((c) => (c.ports ?? []).some((p) => p.name === e.port)),
      );

    const used = exprs();
    expect(used.length).toBeGreaterThan(10);
    const problems: string[] = [];
    for (const { where, expr } of used) {
      for (const metric of new Set(expr.match(METRIC) ?? [])) {
        if (EXTERNAL.test(metric)) continue;
        if (operator.has(metric)) {
          if (!operatorScraped) problems.push(`${where}: ${metric} (operator) is not scraped`);
        } else if (server.has(metric)) {
          if (!serverScraped) problems.push(`${where}: ${metric} (server pods) is not scraped`);
        } else problems.push(`${where}: ${metric} is exported by nothing socketfleet runs`);
      }
    }
    expect(problems).toEqual([]);
  });
});
