import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { OperatorError } from './errors.js';

/**
 * Whether this process may write to the API right now. With leader election, writes are allowed
 * only until the renew deadline of the last successful renewal, on the monotonic clock: a process
 * that was frozen (SIGSTOP, a stalled VM, a long GC pause) past that point finds the gate shut the
 * moment it runs again, before any request it had queued goes out, however the event loop orders
 * the work that piled up meanwhile. revoke() also aborts every request still in flight.
 *
 * What remains is the gap between the check and the socket write of one request: microseconds,
 * the same gap client-go leaves (Kubernetes offers no fencing token to close it).
 */
export class WriteGate {
  private validUntil: number;
  private abort = listenable(new AbortController());
  private reason = 'this process does not hold the leader lease';

  /** open = true: no leader election, writes always allowed. */
  constructor(
    open: boolean,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.validUntil = open ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  }

  /** Aborted when leadership is revoked: in-flight requests listen to it. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Milliseconds (monotonic) until which writes are allowed. */
  get deadline(): number {
    return this.validUntil;
  }

  get isOpen(): boolean {
    return this.now() < this.validUntil;
  }

  /** Writes allowed until `until` (a value of the monotonic clock), e.g. renewal start + renew deadline. */
  openUntil(until: number): void {
    if (this.abort.signal.aborted) this.abort = listenable(new AbortController());
    this.validUntil = until;
  }

  /** Shut at once and abort what is in flight. */
  revoke(reason: string): void {
    this.validUntil = Number.NEGATIVE_INFINITY;
    this.reason = reason;
    this.abort.abort(this.error());
  }

  /** Throws unless writes are allowed right now. Call it immediately before sending. */
  check(): void {
    if (!this.isOpen) throw this.error();
  }

  error(): OperatorError {
    return new OperatorError('LeaderLost', `Write refused: ${this.reason}.`);
  }
}

/**
 * Every in-flight request listens to the gate's signal, and with many clusters far more than
 * Node's default of 10 are in flight at once; that is expected, not a leak (each request removes
 * its listener when it closes).
 */
function listenable(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}
