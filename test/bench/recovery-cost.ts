// Cost of connection-state recovery, one invocation:
//   flock -w 1200 /work/wt/heavy.lock npx tsx test/bench/recovery-cost.ts
// Two fleets run side by side (so they share whatever else loads this machine): each has a
// 3-master Redis Cluster, 3 entrypoint servers and 300 clients in 30 rooms whose members are
// spread over every server, and gets 300 publishes/s of ~370 bytes for RECOVERY_SECONDS. One has
// recovery off, one on. Prints server CPU per 1000 deliveries, Redis CPU and bytes per publish,
// latency, and the Redis memory recovery holds: per room log entry, per session, per journal
// entry, then per room at a given rate and window.
import calculateSlot from 'cluster-key-slot';
import { logKeyOf } from '../../server-image/src/adapter/recovery-keys.js';
import { Fleet, sleep, type ServerProcess } from '../dataplane/support/fleet.js';
import type { RedisClusterFixture } from '../dataplane/support/redis-cluster.js';
import {
  cpuSeconds,
  joinRoomClients,
  publishOpenLoop,
  quantile,
} from '../dataplane/support/room-traffic.js';

const SERVERS = 3;
const ROOMS = 30;
const CLIENTS = 300;
const RATE = 300;
const SECONDS = Number(process.env.RECOVERY_SECONDS ?? 15);
const PAYLOAD = 'x'.repeat(330);
const WINDOW_SECONDS = 120;
/** Default heartbeat (pingInterval 25 s + pingTimeout 20 s) and margin: what the logs keep beyond the window. */
const RETENTION_SECONDS = WINDOW_SECONDS + 45 + 10;

interface Result {
  label: string;
  cpuPer1000: number;
  redisCpuUsPerPublish: number;
  redisBytesPerPublish: number;
  p50: number;
  p99: number;
  lost: number;
  memory?: { perEntry: number; perSession: number; perJournalEntry: number; journalPerSec: number };
}

/** Bytes per entry of the streams/keys matching, from MEMORY USAGE over their owners. */
async function memoryOf(
  redis: RedisClusterFixture,
  keys: string[],
  count: (key: string, port: number) => Promise<number>,
): Promise<{ bytes: number; items: number }> {
  const owners = await redis.slotOwners();
  let bytes = 0;
  let items = 0;
  for (const key of keys) {
    const port = owners[calculateSlot(key)]!;
    const used = (await redis.call(port, 'MEMORY', 'USAGE', key, 'SAMPLES', 0)) as number | null;
    if (used === null) continue;
    bytes += used;
    items += await count(key, port);
  }
  return { bytes, items };
}

async function scanAll(redis: RedisClusterFixture, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const port of await redis.masterPorts()) {
    let cursor = '0';
    do {
      const [next, batch] = (await redis.call(port, 'SCAN', cursor, 'MATCH', pattern)) as [
        string,
        string[],
      ];
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys;
}

async function run(label: string, recovery: boolean): Promise<Result> {
  const fleet = new Fleet('recovery-cost');
  try {
    const redis = await fleet.redisCluster();
    const servers: ServerProcess[] = [];
    for (let i = 0; i < SERVERS; i++) {
      servers.push(
        await fleet.server(redis, {
          eventsPerSecond: 100_000,
          logLevel: 'warn',
          connectionStateRecovery: { enabled: recovery, maxDisconnectionSeconds: WINDOW_SECONDS },
        }),
      );
    }
    const load = await joinRoomClients(
      servers,
      CLIENTS,
      ROOMS,
      (i) => Math.floor(i / ROOMS) % SERVERS,
    );
    await sleep(1000);
    const cpu0 = servers.map((s) => cpuSeconds(s.child.pid!));
    const bytes0 = await redis.netBytes();
    const redisCpu0 = await redis.cpuSeconds();
    const { total, expected } = await publishOpenLoop(load, RATE, SECONDS, PAYLOAD);
    const cpu = servers.reduce((sum, s, i) => sum + cpuSeconds(s.child.pid!) - cpu0[i]!, 0);
    const bytes = (await redis.netBytes()) - bytes0;
    const redisCpu = (await redis.cpuSeconds()) - redisCpu0;
    const delivered = load.delivered();
    const result: Result = {
      label,
      cpuPer1000: (cpu * 1e6) / delivered,
      redisCpuUsPerPublish: (redisCpu * 1e6) / total,
      redisBytesPerPublish: bytes / total,
      p50: quantile(load.latencies, 0.5),
      p99: quantile(load.latencies, 0.99),
      lost: expected - delivered,
    };
    if (recovery) {
      const xlen = async (key: string, port: number): Promise<number> =>
        Number(await redis.call(port, 'XLEN', key));
      const logs = await memoryOf(
        redis,
        Array.from({ length: ROOMS }, (_, r) => logKeyOf('/', `room-${r}`)),
        xlen,
      );
      const sessions = await memoryOf(redis, await scanAll(redis, 'sf-session:*'), () =>
        Promise.resolve(1),
      );
      const journals = await memoryOf(redis, await scanAll(redis, 'sf-journal:*'), xlen);
      result.memory = {
        perEntry: logs.bytes / Math.max(1, logs.items),
        perSession: sessions.bytes / Math.max(1, sessions.items),
        perJournalEntry: journals.bytes / Math.max(1, journals.items),
        journalPerSec: journals.items / SERVERS / (SECONDS + 2),
      };
    }
    for (const c of load.clients) c.close();
    return result;
  } finally {
    await fleet.stopAll();
  }
}

const [off, on] = await Promise.all([run('recovery off', false), run('recovery on', true)]);
const row = (r: Result): string =>
  [
    r.label.padEnd(14),
    `${r.cpuPer1000.toFixed(1).padStart(8)}`,
    `${r.redisCpuUsPerPublish.toFixed(1).padStart(10)}`,
    `${r.redisBytesPerPublish.toFixed(0).padStart(10)}`,
    `${r.p50.toFixed(1).padStart(7)}`,
    `${r.p99.toFixed(1).padStart(7)}`,
    `${String(r.lost).padStart(5)}`,
  ].join(' | ');
console.log(
  `\n${CLIENTS} clients, ${ROOMS} rooms spread over ${SERVERS} servers, ${RATE} publishes/s of ~370 B for ${SECONDS} s, 3-master Redis Cluster\n`,
);
console.log(
  [
    'setup'.padEnd(14),
    'server CPU ms/1000 deliveries'.slice(0, 8).padStart(8),
    'Redis CPU µs/publish'.slice(0, 10).padStart(10),
    'Redis B/publish'.slice(0, 10).padStart(10),
    'p50 ms'.padStart(7),
    'p99 ms'.padStart(7),
    'lost'.padStart(5),
  ].join(' | '),
);
console.log(row(off));
console.log(row(on));
console.log(
  `columns: server CPU ms per 1000 deliveries | Redis CPU µs per publish | Redis bytes in+out per publish | latency p50, p99 | deliveries lost`,
);
console.log(
  `on/off: server CPU x${(on.cpuPer1000 / off.cpuPer1000).toFixed(2)}, Redis CPU x${(on.redisCpuUsPerPublish / off.redisCpuUsPerPublish).toFixed(2)}, Redis bytes x${(on.redisBytesPerPublish / off.redisBytesPerPublish).toFixed(2)}`,
);
const m = on.memory!;
console.log(
  `\nRedis memory with recovery on: ${m.perEntry.toFixed(0)} B per logged broadcast (~370 B payload), ${m.perSession.toFixed(0)} B per session, ${m.perJournalEntry.toFixed(0)} B per journal entry (${m.journalPerSec.toFixed(0)} entries/s per server here)`,
);
console.log(
  `per room, window ${WINDOW_SECONDS} s (logs keep ${RETENTION_SECONDS} s): ` +
    [1, 10, 100]
      .map(
        (rate) =>
          `${rate} msg/s -> ${((m.perEntry * rate * RETENTION_SECONDS) / 1024).toFixed(0)} KiB`,
      )
      .join(', ') +
    ' (capped at maxLogLength 10000 entries)',
);
process.exit(0);
