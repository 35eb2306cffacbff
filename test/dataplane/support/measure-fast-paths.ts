// Ablation of the adapter fast paths on this machine: `npx tsx test/dataplane/support/measure-fast-paths.ts`
// (MEASURE_OFF=<fast path>[,...] to compare just those against all on).
// 3 entrypoint servers, a 3-master Redis Cluster, 300 clients in 30 rooms, 300 publishes/s of ~370 bytes, with
// members spread over every server (what ip_hash gives) or each room on one server (room affinity).
// Prints Redis bytes per publish, server CPU per 1000 deliveries and p99 latency for each setup.
// Latency includes this single load-generator process, so compare it only between setups.
import { readFileSync } from 'node:fs';
import type { FastPaths } from '../../../server-image/src/adapter/sharded-adapter.js';
import { connect, type Client } from './clients.js';
import { Fleet, sleep, until, type ServerProcess } from './fleet.js';

const SERVERS = 3;
const ROOMS = 30;
const CLIENTS = 300;
const RATE = 300;
const SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
const PAYLOAD = 'x'.repeat(330);

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function run(label: string, fastPaths: Partial<FastPaths>, affinity: boolean): Promise<void> {
  const fleet = new Fleet('measure');
  try {
    const redis = await fleet.redisCluster();
    const servers: ServerProcess[] = [];
    for (let i = 0; i < SERVERS; i++) {
      servers.push(
        await fleet.server(redis, { eventsPerSecond: 100_000, logLevel: 'warn', fastPaths }),
      );
    }
    const clients: Client[] = [];
    const latencies: number[] = [];
    let delivered = 0;
    for (let i = 0; i < CLIENTS; i++) {
      const room = i % ROOMS;
      // Affinity: every member of a room on one server; spread: members round-robin over servers.
      const server = affinity ? room % SERVERS : Math.floor(i / ROOMS) % SERVERS;
      const c = await connect(servers[server]!.url);
      c.on('message', (m: { data: { t: number } }) => {
        delivered++;
        latencies.push(performance.now() - m.data.t);
      });
      await c.emitWithAck('join', `room-${room}`);
      clients.push(c);
    }
    await sleep(500);
    const cpu0 = servers.map((s) => cpuSeconds(s.child.pid!));
    const bytes0 = await redis.netBytes();
    const total = RATE * SECONDS;
    let published = 0;
    const started = performance.now();
    while (published < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
      for (; published < due; published++) {
        const publisher = clients[(published * 7) % CLIENTS]!;
        const room = `room-${((published * 7) % CLIENTS) % ROOMS}`;
        publisher.emit('publish', { room, data: { t: performance.now(), p: PAYLOAD } });
      }
      await sleep(5);
    }
    const expected = total * (CLIENTS / ROOMS);
    await until('deliveries', () => delivered >= expected, 30_000).catch(() => undefined);
    await sleep(500);
    const cpu = servers.reduce((sum, s, i) => sum + cpuSeconds(s.child.pid!) - cpu0[i]!, 0);
    const bytes = (await redis.netBytes()) - bytes0;
    latencies.sort((a, b) => a - b);
    const p = (q: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    console.log(
      [
        label.padEnd(34),
        `redis B/publish ${(bytes / total).toFixed(0).padStart(6)}`,
        `cpu ms/1000 deliv ${((cpu * 1e6) / delivered).toFixed(1).padStart(6)}`,
        `p50 ${p(0.5).toFixed(1)} ms`,
        `p99 ${p(0.99).toFixed(1)} ms`,
        `lost ${expected - delivered}`,
      ].join('  '),
    );
    for (const c of clients) c.close();
  } finally {
    await fleet.stopAll();
  }
}

const ALL_OFF: Partial<FastPaths> = {
  localFirst: false,
  binaryFrames: false,
  msgpackBus: false,
  skipLonelyRooms: false,
  directWrites: false,
  compressBus: false,
};
// MEASURE_OFF=directWrites,compressBus switches off only those, to measure one fast path alone.
const only = process.env.MEASURE_OFF?.split(',').filter(Boolean);
const OFF: Partial<FastPaths> = only
  ? Object.fromEntries(only.map((name) => [name, false]))
  : ALL_OFF;
// Both setups run at the same time, so they share whatever else loads this machine: a fairer A/B
// than sequential runs on a shared 2-core box.
for (const affinity of [false, true]) {
  const where = affinity ? 'one server per room' : 'rooms spread';
  await Promise.all([
    run(`${where}, ${only ? only.join('+') : 'fast paths'} off`, OFF, affinity),
    run(`${where}, all fast paths on`, {}, affinity),
  ]);
}
process.exit(0);
