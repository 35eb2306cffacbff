// The chat application: ordinary Socket.IO code. Nothing here knows about Redis, pods or the
// gateway; socketfleet's createServer() gives it a Server whose rooms, acknowledgements,
// fetchSockets and serverSideEmit span every pod.
import { rateLimit } from '../../../dist/server-image/src/index.js';

/** Teams live in dynamic namespaces, created on a pod when its first member connects there. */
export const TEAM_NAMESPACE = /^\/team-[a-z0-9-]{1,40}$/;

const NAME = /^[\p{L}\p{N} _.-]{1,32}$/u;

/**
 * Middleware auth: a display name is required in the handshake auth. When the cluster checks
 * JWTs (spec.auth.mode: jwt), socketfleet's check runs first and the token's subject wins.
 */
function identify(socket, next) {
  const name = socket.data.user ?? socket.handshake.auth?.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    next(new Error('a display name of 1-32 letters, digits, spaces or _.- is required'));
    return;
  }
  socket.data.name = name;
  next();
}

/** Installs the chat on `io`; `ops` is socketfleet's operational handle (config, metrics). */
export function chat(io, ops) {
  const perSecond = ops.config.eventsPerSecond;

  // The lobby (`/`): who is online across every pod, and announcements to every pod.
  io.use(identify);
  io.on('connection', (socket) => {
    socket.use(rateLimit({ eventsPerSecond: perSecond }));
    socket.on('online', async (ack) => {
      const sockets = await io.fetchSockets();
      ack(sockets.map((s) => s.data.name).sort());
    });
    socket.on('announce', (text, ack) => {
      // Every pod, this one included, tells its own lobby clients.
      io.serverSideEmit('announcement', socket.data.name, text);
      io.local.emit('announcement', socket.data.name, text);
      ack?.({ ok: true });
    });
  });
  io.on('announcement', (from, text) => io.local.emit('announcement', from, text));

  const teams = io.of(TEAM_NAMESPACE);
  teams.use(identify);
  teams.on('connection', (socket) => {
    const team = socket.nsp;
    socket.use(rateLimit({ eventsPerSecond: perSecond }));

    socket.on('join', async (channel, ack) => {
      if (typeof channel !== 'string' || channel.length === 0 || channel.length > 64) {
        ack?.({ ok: false, error: 'channel must be 1-64 characters' });
        return;
      }
      await socket.join(channel);
      // Members on every pod.
      const members = await team.in(channel).fetchSockets();
      socket.to(channel).emit('joined', channel, socket.data.name);
      ack?.({ ok: true, members: members.map((s) => s.data.name).sort() });
    });

    socket.on('leave', async (channel, ack) => {
      await socket.leave(channel);
      socket.to(channel).emit('left', channel, socket.data.name);
      ack?.({ ok: true });
    });

    // Several arguments, optional binary attachment, acknowledged with the message id.
    socket.on('say', (channel, text, attachment, ack) => {
      if (typeof attachment === 'function') [attachment, ack] = [undefined, attachment];
      if (!socket.rooms.has(channel)) {
        ack?.({ ok: false, error: `join ${channel} first` });
        return;
      }
      const id = `${socket.id}:${Date.now()}`;
      const at = Date.now();
      if (attachment === undefined)
        socket.to(channel).emit('said', channel, socket.data.name, text, at);
      else socket.to(channel).emit('said', channel, socket.data.name, text, at, attachment);
      ack?.({ ok: true, id });
    });

    // A question to every member of the channel on every pod; the answers come back as one array.
    socket.on('poll', async (channel, question, ack) => {
      try {
        const answers = await team
          .to(channel)
          .except(socket.id)
          .timeout(3000)
          .emitWithAck('vote', channel, question);
        ack({ ok: true, answers });
      } catch (err) {
        ack({ ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    });
  });
}
