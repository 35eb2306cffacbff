import { SOCKETIO_PORT } from './ports.js';
import type { Endpoint } from './types.js';

/** The parts of a discovery.k8s.io/v1 EndpointSlice the gateway reads. */
export interface EndpointSliceLike {
  ports?: { name?: string | null; port?: number | null }[] | null;
  endpoints?:
    | {
        addresses?: string[] | null;
        conditions?: { ready?: boolean | null; terminating?: boolean | null } | null;
      }[]
    | null;
}

/**
 * The server pods of a Service's EndpointSlices as gateway upstreams. A pod that is not ready
 * (starting, failing its probe, or terminating: Kubernetes marks a deleted pod not ready at
 * once) is listed as `down`: no new session goes to it, and ip_hash keeps its position. A nil
 * ready condition means "unknown", which EndpointSlice consumers treat as ready.
 */
export function endpointsFromSlices(
  slices: readonly EndpointSliceLike[],
  portName = 'socketio',
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const slice of slices) {
    const ports = slice.ports ?? [];
    const port = ports.find((p) => p.name === portName)?.port ?? ports[0]?.port ?? SOCKETIO_PORT;
    for (const ep of slice.endpoints ?? []) {
      const ready = ep.conditions?.ready !== false && ep.conditions?.terminating !== true;
      for (const ip of ep.addresses ?? [])
        out.push(ready ? { ip, port } : { ip, port, down: true });
    }
  }
  return out;
}
