import { z } from 'zod';
import { defineEvent, type ServerHandlers } from './server.js';

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

/**
 * The image's default application: clients `join` and `leave` rooms and `publish` `{ room, data }`
 * to every member of a room (on any server), each with an acknowledgement.
 */
export const relayHandlers: ServerHandlers = {
  events: {
    join: defineEvent(RoomNameSchema, async (room, { socket, roomSubscribed, config }) => {
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
      const subscribed = await roomSubscribed(room);
      return { ok: true, room, subscribed };
    }),
    leave: defineEvent(RoomNameSchema, async (room, { socket }) => {
      await socket.leave(room);
      return { ok: true, room };
    }),
    publish: defineEvent(PublishSchema, ({ room, data }, { io, roomSlot }) => {
      const { slot, masterReachable } = roomSlot(room);
      io.to(room).emit(RELAY_MESSAGE_EVENT, { room, data });
      // Clients on this server have it; other servers get it once the slot has a master again,
      // unless that takes longer than the hold (then it is counted as lost).
      return masterReachable ? { ok: true } : { ok: true, held: true, slot };
    }),
  },
};
