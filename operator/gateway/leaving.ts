import type { Endpoint } from '../desired/types.js';

/**
 * Remembers servers that left the list, so ip_hash can keep them as `down` for a grace period:
 * a pod that is gone has no EndpointSlice entry any more, but removing it from the list would
 * shift every later position and remap most clients while the rollout is still going. After the
 * grace its clients have reconnected elsewhere, and the list closes the gap.
 */
export class LeavingServers {
  private readonly gone = new Map<string, { endpoint: Endpoint; until: number }>();
  private known = new Map<string, Endpoint>();

  constructor(private readonly graceMs: number) {}

  /** The current endpoints plus the recently departed ones as down; also forgets expired ones. */
  withLeaving(current: readonly Endpoint[], now: number): Endpoint[] {
    const key = (e: Endpoint): string => `${e.ip}|${e.port}`;
    const next = new Map(current.map((e) => [key(e), e]));
    for (const [k, e] of this.known) {
      if (!next.has(k))
        this.gone.set(k, { endpoint: { ...e, down: true }, until: now + this.graceMs });
    }
    for (const k of next.keys()) this.gone.delete(k);
    for (const [k, g] of this.gone) if (g.until <= now) this.gone.delete(k);
    this.known = next;
    return [...current, ...[...this.gone.values()].map((g) => g.endpoint)];
  }

  /** When the next departed server expires, so the caller can re-render then. */
  nextExpiry(): number | undefined {
    let min: number | undefined;
    for (const g of this.gone.values()) if (min === undefined || g.until < min) min = g.until;
    return min;
  }
}
