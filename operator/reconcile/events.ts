import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient } from './kube-client.js';
import { microTime } from './time.js';

export const REPORTING_CONTROLLER = 'socketfleet.dev/operator';
const DEDUPE_WINDOW_MS = 60_000;

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string | undefined;
}

export interface EventRecorder {
  normal(target: EventTarget, reason: string, action: string, note: string): Promise<void>;
  warning(target: EventTarget, reason: string, action: string, note: string): Promise<void>;
}

/**
 * Records events.k8s.io/v1 Events on a RealtimeCluster (`kubectl describe rtc` and
 * `kubectl events` show them). Emitting never fails a reconcile: an event is a courtesy.
 */
export function createEventRecorder(
  client: KubeClient,
  instance: string,
  log: Logger,
  dedupeWindowMs = DEDUPE_WINDOW_MS,
): EventRecorder {
  const recent = new Map<string, number>();
  const emit = async (
    type: 'Normal' | 'Warning',
    target: EventTarget,
    reason: string,
    action: string,
    note: string,
  ): Promise<void> => {
    const now = new Date();
    // Endpoint churn during a rollout repeats the same note many times; one Event per window is enough.
    const key = [type, target.namespace, target.name, target.uid ?? '', reason, note].join('\0');
    const last = recent.get(key);
    if (last !== undefined && now.getTime() - last < dedupeWindowMs) return;
    recent.set(key, now.getTime());
    if (recent.size > 1000) {
      for (const [k, t] of recent) if (now.getTime() - t >= dedupeWindowMs) recent.delete(k);
    }
    try {
      await client.createObject({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: {
          name: `${target.name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`,
          namespace: target.namespace,
        },
        eventTime: microTime(now),
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: instance.slice(0, 128),
        action,
        reason,
        type,
        note: note.length > 1024 ? `${note.slice(0, 1021)}...` : note,
        regarding: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.name,
          namespace: target.namespace,
          ...(target.uid ? { uid: target.uid } : {}),
        },
      });
    } catch (err) {
      log.warn(
        { err: 'ApiTransient', reason, detail: err instanceof Error ? err.message : String(err) },
        'could not record an event',
      );
    }
  };
  return {
    normal: (t, reason, action, note) => emit('Normal', t, reason, action, note),
    warning: (t, reason, action, note) => emit('Warning', t, reason, action, note),
  };
}
