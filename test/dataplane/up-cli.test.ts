import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alive,
  CLI,
  ROOT,
  freePort,
  groupMembers,
  until,
  UpProcess,
  type UpStatus,
} from './up-helpers.js';

// `socketfleet up` as a user runs it: a real child process on examples/local.yaml (scaled
// down), real redis-server, nginx and server processes, a real socket.io-client.

function connect(url: string, localAddress: string): Promise<Socket> {
  const s = io(url, {
    transports: ['polling', 'websocket'],
    parser: msgpackParser,
    reconnection: false,
    forceNew: true,
    localAddress,
  } as Parameters<typeof io>[1]);
  return new Promise((res, rej) => {
    s.once('connect', () => res(s));
    s.once('connect_error', rej);
  });
}

describe('socketfleet up', () => {
  let up: UpProcess;
  let first: UpStatus;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    up = new UpProcess(await freePort());
    up.writeSpec((spec) => {
      spec.replicas = 2;
      spec.redis = { shards: 1 };
      spec.terminationGracePeriodSeconds = 10;
      (spec.socketio as Record<string, unknown>).drainSeconds = 1;
    });
    up.start();
    first = await up.waitReady();
  });

  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await up.destroy();
  });

  it('starts a Redis Cluster (master + replica per shard), spec.replicas servers and the gateway, and prints the table and URL', () => {
    expect(first.redis.map((r) => `${r.index}-${r.ordinal}`)).toEqual(['0-0', '0-1']);
    expect(up.output).toContain('redis: Assigning the 16384 slots evenly over 1 shard(s).');
    expect(first.servers).toHaveLength(2);
    expect(first.gateway?.port).toBe(up.port);
    expect(first.url).toBe(`http://127.0.0.1:${up.port}`);
    expect(up.output).toMatch(/COMPONENT\s+PID\s+ADDRESS\s+READY/);
    expect(up.output).toContain(`Socket.IO URL: http://127.0.0.1:${up.port}`);
    for (const p of [...first.redis, ...first.servers, first.gateway!])
      expect(alive(p.pid)).toBe(true);
  });

  it('never prints the generated Redis password, and runs Redis with the ACL layout (default user off)', () => {
    expect(up.password().length).toBeGreaterThan(16);
    expect(up.output).not.toContain(up.password());
    const port = first.redis[0]!.port;
    const asDefault = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    expect(asDefault.stdout).toContain('NOAUTH');
    const asServer = (args: string[]): string =>
      spawnSync('redis-cli', ['-p', String(port), '--user', 'socketfleet-server', ...args], {
        encoding: 'utf8',
        env: { ...process.env, REDISCLI_AUTH: up.password() },
      }).stdout;
    expect(asServer(['ping'])).toContain('PONG');
    expect(asServer(['flushall'])).toContain('NOPERM');
    // No password on the command line of any process up started.
    for (const p of [...first.redis, ...first.servers]) {
      const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(up.password());
    }
  });

  it('relays a room broadcast between clients through the gateway URL (polling, then upgrade)', async () => {
    const a = await connect(first.url!, '127.1.1.1');
    const b = await connect(first.url!, '127.1.2.1');
    sockets.push(a, b);
    await expect(a.timeout(10_000).emitWithAck('join', 'up-room')).resolves.toMatchObject({
      ok: true,
    });
    const got = new Promise((r) => a.once('message', r));
    await expect(
      b.timeout(10_000).emitWithAck('publish', { room: 'up-room', data: { hello: 1 } }),
    ).resolves.toMatchObject({ ok: true });
    await expect(got).resolves.toEqual({ room: 'up-room', data: { hello: 1 } });
  });

  it('reshards on a shards edit without restarting a server, and rooms keep relaying', async () => {
    const servers = first.servers.map((x) => x.pid).sort();
    up.writeSpec((spec) => {
      spec.replicas = 2;
      spec.redis = { shards: 2 };
      spec.terminationGracePeriodSeconds = 10;
      (spec.socketio as Record<string, unknown>).drainSeconds = 1;
    });
    const grown = await until('2 shards x 2 nodes', () => {
      const st = up.status();
      return st && st.redis.length === 4 ? st : undefined;
    });
    await until('the slots to move onto shard 1', () =>
      up.output.includes('redis: Moving') ? true : undefined,
    );
    expect(grown.servers.map((x) => x.pid).sort()).toEqual(servers);
    const a = await connect(first.url!, '127.1.3.1');
    const b = await connect(first.url!, '127.1.4.1');
    sockets.push(a, b);
    // Rooms on either shard's slots still relay.
    for (const room of ['after-reshard-a', 'after-reshard-b', 'after-reshard-c']) {
      await a.timeout(10_000).emitWithAck('join', room);
      const got = new Promise((r) => a.once('message', r));
      await b.timeout(10_000).emitWithAck('publish', { room, data: { n: 1 } });
      await expect(got).resolves.toEqual({ room, data: { n: 1 } });
    }
  });

  it('follows edits of the file: more servers (servers rolled on a config change), then fewer servers', async () => {
    const before = new Set(up.status()!.servers.map((s) => s.pid));
    up.writeSpec((spec) => {
      spec.replicas = 3;
      spec.redis = { shards: 2 };
      spec.terminationGracePeriodSeconds = 10;
      (spec.socketio as Record<string, unknown>).drainSeconds = 1;
      (spec.socketio as Record<string, unknown>).eventsPerSecond = 50;
    });
    const grown = await until('3 servers on 2 shards, all restarted', () => {
      const s = up.status();
      return s &&
        s.redis.length === 4 &&
        s.servers.length === 3 &&
        s.servers.every((x) => !before.has(x.pid))
        ? s
        : undefined;
    });
    // A new server config (eventsPerSecond) needs new server processes; the old ones drained.
    await until('old servers to exit', () => [...before].every((pid) => !alive(pid)), 30_000);
    for (const s of grown.servers) expect(alive(s.pid)).toBe(true);

    up.writeSpec((spec) => {
      spec.replicas = 1;
      spec.redis = { shards: 2 };
      spec.terminationGracePeriodSeconds = 10;
      (spec.socketio as Record<string, unknown>).drainSeconds = 1;
      (spec.socketio as Record<string, unknown>).eventsPerSecond = 50;
    });
    const shrunk = await until('1 server', () => {
      const s = up.status();
      return s && s.servers.length === 1 ? s : undefined;
    });
    const removed = grown.servers.filter((s) => s.pid !== shrunk.servers[0]!.pid);
    expect(removed).toHaveLength(2);
    await until('removed servers to exit', () => removed.every((s) => !alive(s.pid)), 30_000);
    // The gateway kept its pid: scaling reloads nginx, it does not restart it.
    expect(shrunk.gateway?.pid).toBe(first.gateway?.pid);
  });

  it('keeps running the previous spec when an edit is invalid, and says why', async () => {
    const before = up.status()!;
    up.writeSpec((spec) => {
      spec.replicas = 1;
      spec.redis = { shards: 0 };
    });
    await until(
      'the problem to be printed',
      () => up.output.includes('spec.redis.shards: must be >= 1'),
      20_000,
    );
    expect(up.exitCode).toBeUndefined();
    expect(up.status()!.servers.map((s) => s.pid)).toEqual(before.servers.map((s) => s.pid));
  });

  it('refuses a second up on the same state dir instead of taking over its processes', async () => {
    const before = up.status()!;
    // The running up's file is invalid right now (previous test); the second one gets a valid one.
    const file = join(up.dir, 'second.yaml');
    copyFileSync(join(ROOT, 'examples', 'local.yaml'), file);
    const second = spawn(
      process.execPath,
      [CLI, 'up', '-f', file, '--port', String(await freePort()), '--state-dir', up.stateDir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    second.stdout.on('data', (d: Buffer) => (out += d.toString()));
    second.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => second.once('exit', r));
    expect(code).toBe(1);
    expect(out).toContain(
      `another socketfleet process (pid ${up.child!.pid}) is running this state dir`,
    );
    for (const p of [...before.redis, ...before.servers]) expect(alive(p.pid)).toBe(true);
  });

  it('restarts a crash-looping process with a growing delay (1 s, 2 s, 4 s), then keeps it', async () => {
    const lines = (): string[] =>
      // The component is named by shard and ordinal, with its role: `redis-0-0 (master)`.
      up.output.split('\n').filter((l) => /redis-0-0\b[^,]* exited; restart \d+ in/.test(l));
    const seen = lines().length;
    const killedAt: number[] = [];
    const restartedAt: number[] = [];
    let pid = up.status()!.redis[0]!.pid;
    // Kill redis-0 as soon as each replacement appears: a crash loop as seen from `up`.
    for (let i = 0; i < 3; i++) {
      process.kill(pid, 'SIGKILL');
      killedAt.push(Date.now());
      pid = await until(
        'a new redis-0',
        () => {
          const p = up.status()?.redis[0]?.pid;
          return p !== undefined && p !== pid && alive(p) ? p : undefined;
        },
        60_000,
      );
      restartedAt.push(Date.now());
    }
    expect(lines().slice(seen)).toEqual([
      expect.stringContaining('exited; restart 1 in 1s'),
      expect.stringContaining('exited; restart 2 in 2s'),
      expect.stringContaining('exited; restart 3 in 4s'),
    ]);
    // Lower bounds only: a loaded machine can only make restarts later.
    [1000, 2000, 4000].forEach((ms, i) =>
      expect(restartedAt[i]! - killedAt[i]!).toBeGreaterThanOrEqual(ms),
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(up.status()!.redis[0]!.pid).toBe(pid);
    expect(alive(pid)).toBe(true);
  });

  it('stops everything on SIGTERM and leaves no process behind', async () => {
    const last = up.status()!;
    const pids = [...up.seenPids];
    expect(pids.length).toBeGreaterThanOrEqual(1 + 2 + 3 + 1);
    expect(await up.stop('SIGTERM')).toBe(0);
    for (const p of [...last.redis, ...last.servers, last.gateway!])
      expect(alive(p.pid)).toBe(false);
    // nginx workers and anything else in the process groups we started are gone too.
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(groupMembers(pids)).toEqual([]);
  });

  it("starts again on the same state dir with a new Redis Cluster, not the last run's peers", async () => {
    // The last run's nodes.conf files are still in the state dir; their peers' ports are gone.
    up.writeSpec((spec) => {
      spec.replicas = 1;
      spec.redis = { shards: 1 };
    });
    const from = up.output.length;
    const started = Date.now();
    up.start();
    await up.waitReady();
    const out = up.output.slice(from);
    console.log(`[up] second start on the same state dir: ready after ${Date.now() - started} ms`);
    expect(out).toContain('redis: Joining');
    expect(out).not.toContain('not settled yet');
    expect(await up.stop('SIGTERM')).toBe(0);
  });
});
