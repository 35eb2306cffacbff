/** One clock function for every bucket (a default arrow would be a closure per connection). */
const monotonicNow = (): number => performance.now();

/**
 * A token bucket refilled continuously at `ratePerSecond` and holding at most one second of
 * tokens, so a client may burst up to its per-second budget but not beyond it.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly now: () => number = monotonicNow,
  ) {
    this.tokens = ratePerSecond;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(
      this.ratePerSecond,
      this.tokens + ((t - this.last) * this.ratePerSecond) / 1000,
    );
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const messages = new Map<number, string>();

/** One string per limit, not one per connection. */
function limitMessage(eventsPerSecond: number): string {
  let m = messages.get(eventsPerSecond);
  if (m === undefined) {
    m = `rate limit exceeded: at most ${eventsPerSecond} events per second per connection.`;
    if (messages.size < 100) messages.set(eventsPerSecond, m);
  }
  return m;
}

type SocketMiddleware = (packet: unknown[], next: (err?: Error) => void) => void;

export interface RateLimitOptions {
  eventsPerSecond: number;
  /**
   * What a refused event gets; by default Socket.IO's own middleware error (the socket emits
   * `error` on the server side) and no delivery to the app's handler.
   */
  onLimited?(packet: unknown[], message: string): void;
}

/**
 * A per-connection token bucket as Socket.IO middleware:
 * `io.on('connection', (socket) => socket.use(rateLimit({ eventsPerSecond: 100 })))`.
 * Each call makes one bucket, so call it once per socket.
 */
export function rateLimit(options: RateLimitOptions): SocketMiddleware {
  const bucket = new TokenBucket(options.eventsPerSecond);
  const message = limitMessage(options.eventsPerSecond);
  return (packet, next) => {
    if (bucket.take()) {
      next();
    } else if (options.onLimited) {
      options.onLimited(packet, message);
    } else {
      next(new Error(message));
    }
  };
}
