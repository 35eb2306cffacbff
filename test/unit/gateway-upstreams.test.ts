import { describe, expect, it } from 'vitest';
import { endpointsFromSlices } from '../../operator/desired/upstreams.js';
import { LeavingServers } from '../../operator/gateway/leaving.js';

describe('endpointsFromSlices', () => {
  it('serves ready pods and marks starting, unready and terminating ones down', () => {
    const eps = endpointsFromSlices([
      {
        ports: [
          { name: 'ops', port: 9090 },
          { name: 'socketio', port: 3000 },
        ],
        endpoints: [
          { addresses: ['10.0.0.1'], conditions: { ready: true } },
          { addresses: ['10.0.0.2'], conditions: { ready: false, terminating: true } },
          { addresses: ['10.0.0.3'], conditions: { ready: false } },
          // A nil ready condition means unknown, which consumers treat as ready.
          { addresses: ['10.0.0.4'], conditions: {} },
        ],
      },
      { ports: null, endpoints: null },
    ]);
    expect(eps).toEqual([
      { ip: '10.0.0.1', port: 3000 },
      { ip: '10.0.0.2', port: 3000, down: true },
      { ip: '10.0.0.3', port: 3000, down: true },
      { ip: '10.0.0.4', port: 3000 },
    ]);
  });
});

describe('LeavingServers (ip-hash)', () => {
  it('keeps a departed server as down for the grace period, then forgets it', () => {
    const a = { ip: '10.0.0.1', port: 3000 };
    const b = { ip: '10.0.0.2', port: 3000 };
    const leaving = new LeavingServers(1000);
    expect(leaving.withLeaving([a, b], 0)).toEqual([a, b]);
    expect(leaving.withLeaving([a], 100)).toEqual([a, { ...b, down: true }]);
    expect(leaving.nextExpiry()).toBe(1100);
    expect(leaving.withLeaving([a], 1099)).toEqual([a, { ...b, down: true }]);
    expect(leaving.withLeaving([a], 1100)).toEqual([a]);
    expect(leaving.nextExpiry()).toBeUndefined();
  });

  it('forgets the departure when the server comes back', () => {
    const a = { ip: '10.0.0.1', port: 3000 };
    const leaving = new LeavingServers(1000);
    leaving.withLeaving([a], 0);
    leaving.withLeaving([], 10);
    expect(leaving.withLeaving([a], 20)).toEqual([a]);
    expect(leaving.nextExpiry()).toBeUndefined();
  });
});
