import type { Socket } from 'socket.io';
import type { z } from 'zod';
import type { Logger } from './logger.js';
import type { ServerMetrics } from './metrics.js';

/** The acknowledgement shape of validated events. */
export type AckReply = ({ ok: true } & Record<string, unknown>) | { ok: false; error: string };

export interface EventHandler<T> {
  schema: z.ZodType<T>;
  handle(payload: T, socket: Socket): AckReply | Promise<AckReply>;
}

/** Types a handler's payload from its schema. */
export function defineEvent<T>(
  schema: z.ZodType<T>,
  handle: (payload: T, socket: Socket) => AckReply | Promise<AckReply>,
): EventHandler<T> {
  return { schema, handle };
}

export interface ValidatedEventsOptions {
  /** Refuse, with an error acknowledgement, every event name not in `events`. */
  strict?: boolean;
  metrics?: ServerMetrics;
  logger?: Logger;
}

function describeIssue(event: string, error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return `invalid "${event}" payload.`;
  const where = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  return `invalid "${event}" payload: ${where}${issue.message}`;
}

function ackOf(args: unknown[]): ((reply: AckReply) => void) | undefined {
  const last = args[args.length - 1];
  return typeof last === 'function' ? (last as (reply: AckReply) => void) : undefined;
}

/**
 * An opt-in event model for one socket: each event carries one payload checked by its zod schema
 * and is acknowledged with `{ ok, ... }`; a bad payload or a failing handler gets an error
 * acknowledgement, never a crash. Use it in a connection handler:
 * `nsp.on('connection', validatedEvents({ join: defineEvent(...) }))`. Other events of the
 * socket stay ordinary Socket.IO events unless `strict` refuses them.
 */
export function validatedEvents(
  events: Record<string, EventHandler<unknown>>,
  options: ValidatedEventsOptions = {},
): (socket: Socket) => void {
  const known = new Set(Object.keys(events));
  const { metrics, logger } = options;
  // Built once and shared by every socket: an emitter calls a listener with the socket as `this`,
  // so no socket needs closures of its own (at 100,000 connections, per-socket closures are MBs).
  const strict = (packet: unknown[], next: (err?: Error) => void): void => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    if (typeof event === 'string' && known.has(event)) {
      next();
      return;
    }
    metrics?.rejectedEvents.inc({ reason: 'unknown-event' });
    ackOf(args)?.({
      ok: false,
      error: `unknown event ${JSON.stringify(String(event)).slice(0, 80)}; this server accepts: ${[...known].join(', ')}.`,
    });
  };
  const listeners = Object.entries(events).map(([event, handler]) => {
    const listener = function (this: Socket, ...args: unknown[]): void {
      const ack = ackOf(args);
      const payload = ack ? args.slice(0, -1)[0] : args[0];
      const parsed = handler.schema.safeParse(payload);
      if (!parsed.success) {
        metrics?.rejectedEvents.inc({ reason: 'invalid-payload' });
        ack?.({ ok: false, error: describeIssue(event, parsed.error) });
        return;
      }
      Promise.resolve(this)
        .then((socket) => handler.handle(parsed.data, socket))
        .then(
          (reply) => ack?.(reply),
          (err: unknown) => {
            metrics?.rejectedEvents.inc({ reason: 'handler-error' });
            logger?.error(
              { event, err: err instanceof Error ? err.message : String(err) },
              'event handler failed',
            );
            ack?.({ ok: false, error: `"${event}" failed on the server; the error was logged.` });
          },
        );
    };
    return [event, listener] as const;
  });
  return (socket) => {
    if (options.strict) socket.use(strict);
    for (const [event, listener] of listeners) socket.on(event, listener);
  };
}
