// Every metric the chart's alerts and dashboard query is exported by a target the chart scrapes:
// the chart rendered by helm with its monitoring switched on, the metric names taken from every
// PromQL expression, and each one traced to a real registry (the operator's, the server's or the
// gateway sync sidecar's)
// and to a ServiceMonitor/PodMonitor whose selector and port match the objects that serve it.
// The exporter sidecars' series (nginx_*, redis_*) are checked against the names their exporters
// document (operator/desired/exporters.ts): no exporter binary runs here, so this proves the
// wiring (container, named port, PodMonitor selector), not the exporter itself.
// kube-state-metrics series are the one documented external source. About 2 s.
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import { buildDesired } from '../../operator/desired/index.js';
import {
  NGINX_EXPORTER_METRICS,
  NGINX_EXPORTER_PORT_NAME,
  REDIS_EXPORTER_METRICS,
  REDIS_EXPORTER_PORT_NAME,
} from '../../operator/desired/exporters.js';
import { ReloadStatus } from '../../operator/gateway/reload-status.js';
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

interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { containers: { ports?: { name: string }[] }[] };
}

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

function selects(selector: Selector, labels: Record<string, string>): boolean {
  if (!matches(selector.matchLabels ?? {}, labels)) return false;
  return (selector.matchExpressions ?? []).every((e) => {
    if (e.operator === 'In') return (e.values ?? []).includes(labels[e.key] ?? '');
    throw new Error(`matchExpressions operator ${e.operator} is not handled by this test`);
  });
}

/** Pod templates of every workload minimal.yaml becomes, with both exporters on or off. */
function podTemplates(exporters: boolean): PodTemplate[] {
  const manifest = parse(readFileSync(join(examplesDir, 'minimal.yaml'), 'utf8')) as {
    spec?: Record<string, unknown>;
  };
  const spec = manifest.spec ?? {};
  if (exporters) {
    spec.gateway = { exporter: { enabled: true } };
    spec.redis = { exporter: { enabled: true } };
  }
  const parsed = parseRealtimeCluster({ ...manifest, spec });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  return buildDesired(parsed.cluster)
    .objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => (o as unknown as { spec: { template: PodTemplate } }).spec.template);
}

/** Container port names that a PodMonitor of the chart turns into a /metrics target. */
function scrapedPortNames(pods: PodTemplate[]): Set<string> {
  const out = new Set<string>();
  const monitors = docs.filter((d) => d.kind === 'PodMonitor') as unknown as {
    spec: { selector: Selector; podMetricsEndpoints: { port: string; path: string }[] };
  }[];
  for (const pm of monitors) {
    for (const pod of pods) {
      if (!selects(pm.spec.selector, pod.metadata.labels)) continue;
      const ports = new Set(pod.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)));
      for (const e of pm.spec.podMetricsEndpoints)
        if (e.path === '/metrics' && ports.has(e.port)) out.add(e.port);
    }
  }
  return out;
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
    const gatewaySync = await names(new ReloadStatus().registry);

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

    // The pods the operator builds (exporters on), and which named ports each PodMonitor
    // scrapes on them: a PodMonitor endpoint yields a target only where a selected pod has a
    // container port of that name.
    const scrapedPorts = scrapedPortNames(podTemplates(true));
    const withoutExporters = scrapedPortNames(podTemplates(false));
    const exported: Record<string, ReadonlySet<string>> = {
      ops: server,
      'sync-metrics': gatewaySync,
      [NGINX_EXPORTER_PORT_NAME]: new Set(NGINX_EXPORTER_METRICS),
      [REDIS_EXPORTER_PORT_NAME]: new Set(REDIS_EXPORTER_METRICS),
    };
    const portsOf = (metric: string): string[] =>
      Object.entries(exported)
        .filter(([, set]) => set.has(metric))
        .map(([port]) => port);

    const used = exprs();
    expect(used.length).toBeGreaterThan(10);
    const problems: string[] = [];
    const optional = new Set<string>();
    for (const { where, expr } of used) {
      for (const metric of new Set(expr.match(METRIC) ?? [])) {
        if (EXTERNAL.test(metric)) continue;
        if (operator.has(metric)) {
          if (!operatorScraped) problems.push(`${where}: ${metric} (operator) is not scraped`);
        } else if (portsOf(metric).length > 0) {
          if (!portsOf(metric).some((p) => scrapedPorts.has(p)))
            problems.push(`${where}: ${metric} (port ${portsOf(metric).join('/')}) is not scraped`);
          if (!portsOf(metric).some((p) => withoutExporters.has(p))) optional.add(metric);
        } else problems.push(`${where}: ${metric} is exported by nothing socketfleet runs`);
      }
    }
    expect(problems).toEqual([]);
    // The exporter series are the only ones that need a cluster to opt in (README: Monitoring);
    // everything else is scraped with the defaults.
    expect([...optional].sort()).toEqual(
      [
        'nginx_connections_active',
        'nginx_http_requests_total',
        'redis_connected_clients',
        'redis_memory_used_bytes',
        'redis_up',
      ].sort(),
    );
  });
});
