/**
 * Publisher-side repair of room broadcasts that Redis delivered to fewer member servers than
 * there are, while the cluster's topology is changing.
 *
 * During a failover or a slot move, a publish can reach the slot's new master before every
 * member server has subscribed there again: SPUBLISH then answers with fewer receivers than
 * the room's member servers (known from the membership handshake, room-presence.ts), and those
 * servers' clients would miss it with no error anywhere. The publisher sends the same message
 * again (same id) until the answer covers every member server, for a bounded time, and
 * receivers drop an id they already delivered. A shortfall outside a topology change (a member
 * server that crashed without saying BYE) is only counted: resending could not help it.
 */

/** Receivers remember this many ids per sender: far more than a repair window can resend. */
const REMEMBERED_IDS = 4096;
/** A sender silent this long is forgotten (servers come and go with every rollout). */
const SENDER_IDLE_MS = 60_000;

/** Ids of broadcasts already delivered, per sending server. */
export class DeliveredIds {
  private readonly bySender = new Map<string, { ids: Set<number>; lastSeen: number }>();
  private lastSweep = 0;

  /** Records `id` from `sender`; false when it was delivered before (a repair's resend). */
  firstTime(sender: string, id: number, now = Date.now()): boolean {
    let entry = this.bySender.get(sender);
    if (!entry) {
      entry = { ids: new Set(), lastSeen: now };
      this.bySender.set(sender, entry);
    }
    entry.lastSeen = now;
    if (now - this.lastSweep > SENDER_IDLE_MS) this.sweep(now);
    const ids = entry.ids;
    if (ids.has(id)) return false;
    ids.add(id);
    if (ids.size > REMEMBERED_IDS) {
      // A Set iterates in insertion order: the first entry is the oldest.
      for (const oldest of ids) {
        ids.delete(oldest);
        break;
      }
    }
    return true;
  }

  get senders(): number {
    return this.bySender.size;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [sender, entry] of this.bySender) {
      if (now - entry.lastSeen > SENDER_IDLE_MS) this.bySender.delete(sender);
    }
  }
}

export interface RepairDeps {
  /** Publishes once; resolves with the receivers SPUBLISH reached. */
  send(): Promise<number>;
  /** Servers that must receive it (this one included), or undefined when unknown. */
  expected(): number | undefined;
  /** Whether the cluster's slots or masters changed recently, so a resend can help. */
  topologyChanging(): boolean;
  holdMs: number;
  retryDelayMs: number;
  onRepaired?(): void;
  /** Member servers a publish did not reach, once given up. */
  onShort?(missing: number): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Publishes, then resends while the publish reached fewer servers than expected (see above). */
export async function publishWithRepair(deps: RepairDeps): Promise<void> {
  const started = Date.now();
  let reached = await deps.send();
  let resent = false;
  for (;;) {
    const expected = deps.expected();
    if (expected === undefined || reached >= expected) {
      if (resent) deps.onRepaired?.();
      return;
    }
    if (!deps.topologyChanging() || Date.now() - started > deps.holdMs) {
      deps.onShort?.(expected - reached);
      return;
    }
    await sleep(deps.retryDelayMs);
    resent = true;
    reached = await deps.send();
  }
}
