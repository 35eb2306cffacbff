/**
 * The few numbers the operator reads from a server's /metrics (Prometheus text exposition format
 * 0.0.4). Only what the autoscaler and the abnormality checks need; a full parser would be a
 * dependency for nothing.
 */
export interface ServerReading {
  /** socketfleet_connected_clients. */
  connections: number | undefined;
  /** nodejs_eventloop_lag_p99_seconds, in milliseconds. */
  lagMs: number | undefined;
  /**
   * Messages other servers missed because of this server's publishes: every
   * socketfleet_bus_publish_failed_total series plus socketfleet_bus_publish_short_total.
   */
  lostPublishes: number;
  /** socketfleet_draining is 1: the pod is leaving and its load is moving away. */
  draining: boolean;
}

/** Sums every sample of each metric name (labels ignored). */
export function sumByName(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // name{labels} value [timestamp]; label values may hold spaces, so split after the brace.
    const brace = line.indexOf('{');
    const close = brace >= 0 ? line.lastIndexOf('}') : -1;
    const name = brace >= 0 ? line.slice(0, brace) : line.slice(0, line.indexOf(' '));
    const rest = (close >= 0 ? line.slice(close + 1) : line.slice(name.length)).trim();
    const value = Number(rest.split(' ')[0]);
    if (name === '' || !Number.isFinite(value)) continue;
    out.set(name, (out.get(name) ?? 0) + value);
  }
  return out;
}

export function readServerMetrics(text: string): ServerReading {
  const m = sumByName(text);
  const lag = m.get('nodejs_eventloop_lag_p99_seconds');
  return {
    connections: m.get('socketfleet_connected_clients'),
    lagMs: lag === undefined ? undefined : lag * 1000,
    lostPublishes:
      (m.get('socketfleet_bus_publish_failed_total') ?? 0) +
      (m.get('socketfleet_bus_publish_short_total') ?? 0),
    draining: (m.get('socketfleet_draining') ?? 0) > 0,
  };
}

/** What the operator reads from a gateway sync sidecar's /metrics. */
export interface GatewayReading {
  /** socketfleet_gateway_config_rejected is 1: nginx runs a previous configuration. */
  configRejected: boolean;
  /** socketfleet_gateway_reload_failures_total. */
  reloadFailures: number;
  /** nginx's message, from GET /rejection, while rejected. */
  message?: string;
}

export function readGatewayMetrics(text: string): GatewayReading {
  const m = sumByName(text);
  return {
    configRejected: (m.get('socketfleet_gateway_config_rejected') ?? 0) > 0,
    reloadFailures: m.get('socketfleet_gateway_reload_failures_total') ?? 0,
  };
}
