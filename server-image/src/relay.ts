import type { Server } from 'socket.io';
import { z } from 'zod';
import { defineEvent, validatedEvents, type AckReply, type EventHandler } from './events.js';
import { rateLimit } from './rate-limit.js';
import type { Ops } from './server.js';

/** Socket ids are 20 URL-safe characters; a room named like one would receive that client's private traffic. */
const SOCKET_ID_LIKE = /^[A-Za-z0-9_-]{20}$/;

export const RoomNameSchema = z
  .string()
  .min(1)
  .max(200)
  .refine((room) => !SOCKET_ID_LIKE.test(room), {
    message: 'room names of 20 letters, digits, "-" or "_" are reserved for socket ids',
  });

export const PublishSchema = z.object({ room: RoomNameSchema, data: z.unknown() }).strict();

/** The event relayed to room members: `message` with `{ room, data }`. */
export const RELAY_MESSAGE_EVENT = 'message';

/** The relay's events: `join` and `leave` a room, `publish` `{ room, data }` to its members. */
export function relayEvents(io: Server, ops: Ops): Record<string, EventHandler<unknown>> {
  const { config } = ops;
  return {
    join: defineEvent(RoomNameSchema, async (room, socket): Promise<AckReply> => {
      // socket.rooms holds the socket's own id room too.
      if (!socket.rooms.has(room) && socket.rooms.size - 1 >= config.roomsPerConnection) {
        return {
          ok: false,
          error: `a connection may be in at most ${config.roomsPerConnection} rooms; leave one first.`,
        };
      }
      await socket.join(room);
      // Acknowledge only once this server receives the room's traffic, so a publish that the
      // client causes after the ack is never missed.
      const subscribed = await ops.roomSubscribed(room, socket.nsp);
      return { ok: true, room, subscribed };
    }),
    leave: defineEvent(RoomNameSchema, async (room, socket): Promise<AckReply> => {
      await socket.leave(room);
      return { ok: true, room };
    }),
    publish: defineEvent(PublishSchema, ({ room, data }): AckReply => {
      const { slot, masterReachable } = ops.roomSlot(room);
      io.to(room).emit(RELAY_MESSAGE_EVENT, { room, data });
      // Clients on this server have it; other servers get it once the slot has a master again,
      // unless that takes longer than the hold (then it is counted as lost).
      return masterReachable ? { ok: true } : { ok: true, held: true, slot };
    }),
  };
}

/**
 * The image's default application, composed of the opt-in pieces: in `/`, a per-connection rate
 * limit, then the validated relay events, with every other event name refused.
 */
export function relayApp(io: Server, ops: Ops): void {
  const { config, metrics, logger } = ops;
  const events = validatedEvents(relayEvents(io, ops), { strict: true, metrics, logger });
  // Shared by every connection's limiter; only the bucket is per connection.
  const limit = {
    eventsPerSecond: config.eventsPerSecond,
    onLimited: (packet: unknown[], error: string): void => {
      metrics.rejectedEvents.inc({ reason: 'rate-limited' });
      const ack = packet[packet.length - 1];
      if (typeof ack === 'function') (ack as (reply: AckReply) => void)({ ok: false, error });
    },
  };
  io.on('connection', (socket) => {
    socket.use(rateLimit(limit));
    events(socket);
  });
}
