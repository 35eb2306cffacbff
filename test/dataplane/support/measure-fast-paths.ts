// Ablation of the adapter fast paths on this machine: `npx tsx test/dataplane/support/measure-fast-paths.ts`
// (MEASURE_OFF=<fast path>[,...] to compare just those against all on).
// 3 entrypoint servers, a 3-master Redis Cluster, 300 clients in 30 rooms, 300 publishes/s of ~370 bytes, with
// members spread over every server (what ip_hash gives) or each room on one server (room affinity).
// Prints Redis bytes per publish, server CPU per 1000 deliveries and p99 latency for each setup.
// Latency (from each publish's due time) includes this single load-generator process, so compare
// it only between setups.
import type { FastPaths } from '../../../server-image/src/adapter/sharded-adapter.js';
import { Fleet, sleep, type ServerProcess } from './fleet.js';
import { cpuSeconds, joinRoomClients, publishOpenLoop, quantile } from './room-traffic.js';

const SERVERS = 3;
const ROOMS = 30;
const CLIENTS = 300;
const RATE = 300;
const SECONDS = Number(process.env.MEASURE_SECONDS ?? 10);
const PAYLOAD = 'x'.repeat(330);

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
    // Affinity: every member of a room on one server; spread: members round-robin over servers.
    const load = await joinRoomClients(servers, CLIENTS, ROOMS, (i, room) =>
      affinity ? room % SERVERS : Math.floor(i / ROOMS) % SERVERS,
    );
    await sleep(500);
    const cpu0 = servers.map((s) => cpuSeconds(s.child.pid!));
    const bytes0 = await redis.netBytes();
    const { total, expected } = await publishOpenLoop(load, RATE, SECONDS, PAYLOAD);
    const cpu = servers.reduce((sum, s, i) => sum + cpuSeconds(s.child.pid!) - cpu0[i]!, 0);
    const bytes = (await redis.netBytes()) - bytes0;
    const delivered = load.delivered();
    console.log(
      [
        label.padEnd(34),
        `redis B/publish ${(bytes / total).toFixed(0).padStart(6)}`,
        `cpu ms/1000 deliv ${((cpu * 1e6) / delivered).toFixed(1).padStart(6)}`,
        `p50 ${quantile(load.latencies, 0.5).toFixed(1)} ms`,
        `p99 ${quantile(load.latencies, 0.99).toFixed(1)} ms`,
        `lost ${expected - delivered}`,
      ].join('  '),
    );
    for (const c of load.clients) c.close();
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
