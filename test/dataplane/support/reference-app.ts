import type { Server, Socket } from 'socket.io';

/**
 * The reference handlers of Socket.IO conformance suites, written as any Socket.IO app would be:
 * on connect (in `/` and `/custom`) emit `auth` with the handshake's auth, echo `message` back
 * as `message-back` with all its arguments, acknowledge `message-with-ack` with all its
 * arguments. `ask` adds the direction those leave out: the server emits `question` with an
 * acknowledgement and reports the client's answer as `answer`.
 */
export function referenceApp(io: Server): void {
  const onConnection = (socket: Socket): void => {
    socket.emit('auth', socket.handshake.auth);
    socket.on('message', (...args: unknown[]) => {
      socket.emit('message-back', ...args);
    });
    socket.on('message-with-ack', (...args: unknown[]) => {
      const ack = args.pop() as (...reply: unknown[]) => void;
      ack(...args);
    });
    socket.on('ask', (...args: unknown[]) => {
      socket.emit('question', ...args, (...answer: unknown[]) => {
        socket.emit('answer', ...answer);
      });
    });
  };
  io.of('/').on('connection', onConnection);
  io.of('/custom').on('connection', onConnection);
}
