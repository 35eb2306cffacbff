// Runs inside the node's network namespace (nsenter --net): opens Socket.IO polling handshakes
// through the gateway Service from the node's client source addresses, the way new browsers
// arrive, and closes each session at once. One process, no forwarder per request, so it can
// keep a steady rate on a loaded machine. Reads commands on stdin, writes JSON lines on stdout:
//   watch <ip> <port>   poll that pod's /metrics until socketfleet_sessions_total > 0,
//                       then print {"event":"first-session","pod":ip,"at":ms}
//   stop                print {"event":"summary","statuses":{...},"handshakes":n} and exit
import http from 'node:http';
import { createInterface } from 'node:readline';

const cfg = JSON.parse(process.argv[2]);
const { host, port, sources, perRound, roundMs } = cfg;
const statuses = {};
// Every handshake that did not answer 200: when it started and from which address (first 200).
const failures = [];
let handshakes = 0;
// Latency of answered handshakes: the slowest, and how many took 5 s or more.
let maxMs = 0;
let slow = 0;
let next = 0;
let running = true;
const pending = new Set();

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const count = (key) => (statuses[key] = (statuses[key] ?? 0) + 1);

function request(method, path, source, body) {
  return new Promise((resolve) => {
    const req = http.request(
      // socket.io-client gives up on a connection attempt after 20 s (its `timeout` option).
      { host, port, path, method, localAddress: source, agent: false, timeout: 20_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, text }));
        res.on('error', (err) => resolve({ status: `error ${err.code ?? err.message}` }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: `error ${err.code ?? err.message}` }));
    if (body !== undefined) {
      req.setHeader('content-type', 'text/plain;charset=UTF-8');
      req.end(body);
    } else req.end();
  });
}

async function handshake(source) {
  const base = '/socket.io/?EIO=4&transport=polling';
  const at = Date.now();
  const r = await request('GET', base, source);
  handshakes++;
  count(String(r.status));
  const ms = Date.now() - at;
  if (r.status === 200) {
    maxMs = Math.max(maxMs, ms);
    if (ms >= 5000) slow++;
  }
  if (r.status !== 200 && failures.length < 200)
    failures.push({ at, ms, source, status: String(r.status) });
  const sid = r.status === 200 ? /"sid":"([^"]+)"/.exec(r.text)?.[1] : undefined;
  // Close the session at once (engine.io close packet "1"): no idle session lingers.
  if (sid) await request('POST', `${base}&sid=${encodeURIComponent(sid)}`, source, '1');
}

async function rounds() {
  while (running) {
    for (let i = 0; i < perRound; i++) {
      const p = handshake(sources[next++ % sources.length]);
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await new Promise((r) => setTimeout(r, roundMs));
  }
}

async function watch(ip, metricsPort) {
  for (;;) {
    const m = await new Promise((resolve) => {
      http
        .get({ host: ip, port: metricsPort, path: '/metrics', timeout: 2000 }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(text));
        })
        .on('error', () => resolve(''));
    });
    const line = /^socketfleet_sessions_total (\S+)$/m.exec(m);
    if (line && Number(line[1]) > 0) {
      out({ event: 'first-session', pod: ip, at: Date.now() });
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, a, b] = line.trim().split(/\s+/);
  if (cmd === 'watch') void watch(a, Number(b));
  if (cmd === 'stop') {
    running = false;
    void Promise.all(pending).then(() => {
      // Exit once the line is flushed: stdout is a pipe, written asynchronously.
      process.stdout.write(
        JSON.stringify({ event: 'summary', statuses, handshakes, failures, maxMs, slow }) + '\n',
        () => process.exit(0),
      );
    });
  }
});
out({ event: 'started', at: Date.now() });
void rounds();
