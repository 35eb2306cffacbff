import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorTag } from './errors.js';
import type { WriteVerb } from './kube-client.js';

export interface OperatorMetrics {
  registry: Registry;
  reconciles: Counter<'result'>;
  errors: Counter<'reason'>;
  duration: Histogram;
  queueDepth: Gauge;
  apiWrites: Counter<'verb' | 'kind'>;
  leader: Gauge;
  recordWrite: (verb: WriteVerb, kind: string) => void;
  recordError: (tag: ErrorTag) => void;
}

export function createMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'socketfleet_operator_' });
  const reconciles = new Counter({
    name: 'socketfleet_operator_reconciles_total',
    help: 'Reconciles run, by result (success, error, invalid).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'socketfleet_operator_reconcile_errors_total',
    help: 'Reconcile failures by error tag.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'socketfleet_operator_reconcile_duration_seconds',
    help: 'Time one reconcile of one RealtimeCluster takes.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'socketfleet_operator_workqueue_depth',
    help: 'RealtimeClusters waiting to be reconciled.',
    registers: [registry],
  });
  const apiWrites = new Counter({
    name: 'socketfleet_operator_api_write_requests_total',
    help: 'Write requests sent to the API server, by verb and kind (kind/status for the status subresource).',
    labelNames: ['verb', 'kind'] as const,
    registers: [registry],
  });
  const leader = new Gauge({
    name: 'socketfleet_operator_leader',
    help: '1 while this process holds the leader Lease and runs the controllers.',
    registers: [registry],
  });
  return {
    registry,
    reconciles,
    errors,
    duration,
    queueDepth,
    apiWrites,
    leader,
    recordWrite: (verb, kind) => apiWrites.inc({ verb, kind }),
    recordError: (tag) => errors.inc({ reason: tag }),
  };
}
