// The floor: a single-process raw `ws` broadcast of the same payload, no Socket.IO, no Redis.
// A client connects to /?room=<room>; a text frame {"type":"publish","room","data"} is sent once
// serialised once, to every member of the room. Env: PORT.
import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.env.PORT ?? 3000);
const rooms = new Map();
const server = http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const room = new URL(req.url ?? '/', 'http://x').searchParams.get('room');
  if (room) {
    let set = rooms.get(room);
    if (!set) rooms.set(room, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
  }
  ws.on('message', (raw) => {
    const msg = JSON.parse(raw.toString('utf8'));
    if (msg.type !== 'publish') return;
    const members = rooms.get(msg.room);
    if (!members) return;
    // Serialise once; ws only adds a 2-4 byte header per member.
    const text = JSON.stringify(msg.data);
    for (const m of members) if (m.readyState === WebSocket.OPEN) m.send(text);
  });
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`ws floor listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
