import { describe, expect, it } from 'vitest';
import {
  OperatorError,
  tagForHttpStatus,
  toOperatorError,
  ERROR_TAGS,
} from '../../operator/reconcile/errors.js';
import { parseOperatorFlags } from '../../operator/cli/operator.js';
import { microTime, rfc3339 } from '../../operator/reconcile/time.js';
import { resourcePath, requireKindInfo } from '../../operator/reconcile/kinds.js';

describe('error tags', () => {
  it('maps API status codes to tags', () => {
    expect(tagForHttpStatus(409)).toBe('ApiConflict');
    expect(tagForHttpStatus(403)).toBe('ApiForbidden');
    expect(tagForHttpStatus(404)).toBe('ApiNotFound');
    expect(tagForHttpStatus(422)).toBe('ApiInvalid');
    expect(tagForHttpStatus(429)).toBe('ApiTransient');
    expect(tagForHttpStatus(503)).toBe('ApiTransient');
    expect(tagForHttpStatus(418)).toBe('Internal');
    // A create in a namespace being deleted: 403 like RBAC, but its own tag (not retried).
    expect(tagForHttpStatus(403, ['NamespaceTerminating'])).toBe('NamespaceTerminating');
    expect(tagForHttpStatus(403, ['FieldValueForbidden'])).toBe('ApiForbidden');
  });
  it('treats only spec problems as terminal', () => {
    const terminal = ERROR_TAGS.filter((t) => new OperatorError(t, 'x').terminal);
    expect(terminal).toEqual(['InvalidSpec', 'BuildFailed']);
  });
  it('classifies network failures as transient', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), {
      code: 'ECONNREFUSED',
    });
    expect(toOperatorError(err).tag).toBe('ApiTransient');
    expect(toOperatorError(new Error('boom')).tag).toBe('Internal');
  });
});

describe('time formats', () => {
  it('writes MicroTime with six fractional digits and Time without fractions', () => {
    const d = new Date('2026-03-04T05:06:07.089Z');
    expect(microTime(d)).toBe('2026-03-04T05:06:07.089000Z');
    expect(rfc3339(d)).toBe('2026-03-04T05:06:07Z');
  });
});

describe('resourcePath', () => {
  it('builds core, group, cluster-wide and subresource paths', () => {
    expect(resourcePath(requireKindInfo('v1', 'Secret'), 'ns', 'a')).toBe(
      '/api/v1/namespaces/ns/secrets/a',
    );
    expect(resourcePath(requireKindInfo('apps/v1', 'Deployment'), undefined)).toBe(
      '/apis/apps/v1/deployments',
    );
    expect(
      resourcePath(
        requireKindInfo('socketfleet.dev/v1alpha1', 'RealtimeCluster'),
        'ns',
        'x',
        'status',
      ),
    ).toBe('/apis/socketfleet.dev/v1alpha1/namespaces/ns/realtimeclusters/x/status');
  });
  it('refuses a kind it does not know with an actionable sentence', () => {
    expect(() => requireKindInfo('v1', 'Node')).toThrow(
      'The operator does not know the kind v1 Node; add it to operator/reconcile/kinds.ts.',
    );
  });
});

describe('operator flags', () => {
  it('has the documented defaults', () => {
    const f = parseOperatorFlags([]);
    expect(f).toMatchObject({
      namespaces: undefined,
      metricsPort: 8080,
      leaderElection: true,
      leaseName: 'socketfleet-operator',
      concurrency: 4,
    });
  });
  it('accepts repeated and comma-separated namespaces', () => {
    const f = parseOperatorFlags(['--namespace', 'a,b', '--namespace', 'c', '--namespace', 'a']);
    expect(f !== 'help' && f.namespaces).toEqual(['a', 'b', 'c']);
  });
  it('rejects bad values with one sentence', () => {
    expect(() => parseOperatorFlags(['--metrics-port', 'x'])).toThrow(
      '--metrics-port must be an integer from 0 to 65535, got "x".',
    );
    expect(() => parseOperatorFlags(['--namespace', 'Bad_NS'])).toThrow(
      '--namespace "Bad_NS" is not a valid namespace name.',
    );
    expect(() => parseOperatorFlags(['--leader-election', 'maybe'])).toThrow(
      '--leader-election must be true or false, got "maybe".',
    );
  });
});
