import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { connect, type Client } from './support/clients.js';
import { sleep } from './support/fleet.js';
import { useLibraryServers } from './support/library-servers.js';

const WINDOW_MS = 2000;

/** One request; resolves with the status, or with the error code if the server hung up. */
function status(port: number, path: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

// What a rollout asks of one server: wait while the gateway still sends new sessions, then
// disconnect every client of every namespace spread over the window, refusing new sessions in a
// way the gateway can retry elsewhere.
describe('drain of every namespace', () => {
  const servers = useLibraryServers('drain-namespaces');

  it('spreads the disconnects of /, a static and dynamic namespaces over drainSeconds', async () => {
    const handle = await servers.start({ drainSeconds: WINDOW_MS / 1000 });
    handle.io.of('/chat').on('connection', () => undefined);
    handle.io.of(/^\/dyn-\d+$/).on('connection', () => undefined);
    const url = `http://127.0.0.1:${handle.port}`;
    const clients: Client[] = [];
    for (let i = 0; i < 12; i++) {
      const nsp = ['', '/chat', `/dyn-${i}`][i % 3]!;
      clients.push(await connect(`${url}${nsp}`, { transports: ['polling', 'websocket'] }));
    }
    expect(handle.io.engine.clientsCount).toBe(12);
    const at: number[] = [];
    const reasons: string[] = [];
    for (const c of clients) {
      c.on('disconnect', (reason) => {
        at.push(Date.now());
        reasons.push(reason);
      });
    }

    const started = Date.now();
    const drained = handle.drain();
    await sleep(50);
    // New sessions are refused: a polling handshake with engine.io's 403 (nginx retries it), a
    // WebSocket handshake by hanging up before any answer (nginx retries that too, not a 400).
    expect(await status(handle.port, '/socket.io/?EIO=4&transport=polling')).toBe('403');
    expect(
      await status(handle.port, '/socket.io/?EIO=4&transport=websocket', {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      }),
    ).toBe('ECONNRESET');
    await drained;
    await sleep(200);

    expect(at).toHaveLength(12);
    expect(new Set(reasons)).toEqual(new Set(['transport close']));
    expect(Math.max(...at) - Math.min(...at)).toBeGreaterThanOrEqual(WINDOW_MS / 2);
    expect(Math.max(...at) - started).toBeLessThan(WINDOW_MS + 1000);
    expect(handle.io.engine.clientsCount).toBe(0);
  });

  it('answers the preStop hook once no new session arrived for the quiet period', async () => {
    const handle = await servers.start();
    const url = `http://127.0.0.1:${handle.opsPort}`;
    let t = Date.now();
    let text = await (await fetch(`${url}/prestop?quietMs=300&maxMs=3000`)).text();
    expect(Date.now() - t).toBeGreaterThanOrEqual(300);
    expect(text).toMatch(/^no new session for 300 ms/);

    // Handshakes keep arriving (the gateway still sends this server new clients): it waits them
    // out up to the bound, and says so.
    let stop = false;
    const arrivals = (async () => {
      while (!stop) {
        await status(handle.port, '/socket.io/?EIO=4&transport=polling');
        await sleep(100);
      }
    })();
    t = Date.now();
    text = await (await fetch(`${url}/prestop?quietMs=400&maxMs=1500`)).text();
    stop = true;
    await arrivals;
    expect(Date.now() - t).toBeGreaterThanOrEqual(1500);
    expect(text).toMatch(/^new sessions still arriving after \d+ ms/);
    // The hook only waits: the server is still ready and takes sessions until SIGTERM.
    expect(handle.isReady()).toBe(true);
  });
});
