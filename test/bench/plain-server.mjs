// Plain Socket.IO as teams scale it today: the default JSON parser and the classic
// @socket.io/redis-adapter on one Redis. The same relay protocol as the socketfleet image
// (join / leave / publish with acknowledgements, members receive `message` { room, data }),
// so the benchmark compares stacks, not applications.
// Env: PORT, REDIS_PORT, REDIS_PASSWORD (optional).
import http from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';

const port = Number(process.env.PORT ?? 3000);
const redisOpts = {
  host: '127.0.0.1',
  port: Number(process.env.REDIS_PORT ?? 6379),
  ...(process.env.REDIS_PASSWORD ? { password: process.env.REDIS_PASSWORD } : {}),
};
const pub = new Redis(redisOpts);
const sub = pub.duplicate();
const httpServer = http.createServer();
const io = new Server(httpServer, { adapter: createAdapter(pub, sub) });

io.on('connection', (socket) => {
  socket.on('join', async (room, ack) => {
    await socket.join(room);
    if (typeof ack === 'function') ack({ ok: true, room });
  });
  socket.on('leave', async (room, ack) => {
    await socket.leave(room);
    if (typeof ack === 'function') ack({ ok: true, room });
  });
  socket.on('publish', (msg, ack) => {
    io.to(msg.room).emit('message', { room: msg.room, data: msg.data });
    if (typeof ack === 'function') ack({ ok: true });
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`plain socket.io listening on ${port}\n`);
});

const stop = () => {
  io.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
