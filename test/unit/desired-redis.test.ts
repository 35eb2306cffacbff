import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildDesired,
  buildRedisAuthSecret,
  deriveRedisPasswords,
  REDIS_USERS,
  renderRedisAclConf,
  type KubeObject,
} from '../../operator/desired/index.js';
import { clusterFrom, manifest } from './helpers.js';
import { freePort, stop, waitFor } from './nginx-process.js';

/**
 * The shard's own start script, ACL users and probe, run against Debian's redis-server: the
 * pod's files with their mount paths pointed at a temp dir.
 */

interface Container {
  command: string[];
  env: { name: string; value?: string }[];
  readinessProbe: { exec: { command: string[] } };
}

function shard(spec: Record<string, unknown>): {
  conf: string;
  start: string;
  container: Container;
} {
  const objects = buildDesired(clusterFrom(manifest(spec))).objects;
  const cm = objects.find(
    (o: KubeObject) => o.metadata.name === 'demo-redis-config',
  ) as unknown as {
    data: Record<string, string>;
  };
  const sts = objects.find((o) => o.kind === 'StatefulSet') as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  return {
    conf: cm.data['redis.conf']!,
    start: cm.data['start.sh']!,
    container: sts.spec.template.spec.containers[0]!,
  };
}

const PASSWORDS = deriveRedisPasswords(Buffer.alloc(32, 9), 'demo-uid');
const U = REDIS_USERS;
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

interface Shard {
  port: number;
  dir: string;
  pid: number;
}

async function startShard(spec: Record<string, unknown>): Promise<Shard> {
  const { conf, start, container } = shard(spec);
  const dir = mkdtempSync(join(tmpdir(), 'socketfleet-redis-'));
  const at = (text: string): string =>
    text
      .replaceAll('/etc/redis-auth', join(dir, 'auth'))
      .replaceAll('/run/redis', join(dir, 'run'))
      .replaceAll('/etc/redis/', `${dir}/`);
  // The Secret's files as the kubelet mounts them (only the items the pod asks for).
  mkdirSync(join(dir, 'auth'));
  mkdirSync(join(dir, 'run'));
  const secret = buildRedisAuthSecret(clusterFrom(manifest(spec)), PASSWORDS) as unknown as {
    stringData: Record<string, string>;
  };
  for (const [k, v] of Object.entries(secret.stringData)) writeFileSync(join(dir, 'auth', k), v);
  writeFileSync(join(dir, 'redis.conf'), at(conf));
  writeFileSync(join(dir, 'start.sh'), at(start));
  const port = await freePort();
  writeFileSync(join(dir, 'redis.conf'), `${at(conf)}port ${port}\nbind 127.0.0.1\n`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    POD_NAME: 'demo-redis-0-0',
    POD_NAMESPACE: 'rt',
  };
  for (const e of container.env) if (e.value !== undefined) env[e.name] = e.value;
  expect(container.command).toEqual(['sh', '/etc/redis/start.sh']);
  const child: ChildProcess = spawn('sh', [join(dir, 'start.sh')], {
    cwd: dir,
    env,
    stdio: 'ignore',
  });
  cleanups.push(async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('redis to answer', () => {
    const r = cli(port, ['ping']);
    return Promise.resolve(/PONG|NOAUTH/.test(r) ? true : undefined);
  });
  return { port, dir, pid: child.pid! };
}

function cli(port: number, args: string[], login?: { user: string; password: string }): string {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.REDISCLI_AUTH;
  const auth: string[] = [];
  if (login) {
    env.REDISCLI_AUTH = login.password;
    auth.push('--user', login.user);
  }
  const r = spawnSync('redis-cli', ['-p', String(port), ...auth, ...args], {
    encoding: 'utf8',
    env,
  });
  return `${r.stdout}${r.stderr}`.trim();
}

const operator = { user: U.operator, password: PASSWORDS.operator };
const server = { user: U.server, password: PASSWORDS.server };

describe('redis shard', { timeout: 60_000 }, () => {
  it('starts from the rendered start script with ACL users from the Secret files, default user off', async () => {
    const { port, dir, pid } = await startShard({ redis: { maxClients: 2048 } });
    expect(cli(port, ['ping'])).toContain('NOAUTH');
    expect(cli(port, ['ping'], { user: 'default', password: '' })).toMatch(/WRONGPASS|invalid/i);
    expect(cli(port, ['ping'], { user: U.server, password: 'wrong' })).toMatch(
      /WRONGPASS|invalid/i,
    );
    // The file start.sh wrote: only Redis's user may read it, and it is exactly the layout that
    // socketfleet up and the data-plane tests render in-process.
    const written = join(dir, 'run', 'auth.conf');
    expect(statSync(written).mode & 0o777).toBe(0o600);
    expect(readFileSync(written, 'utf8')).toBe(renderRedisAclConf(PASSWORDS));
    // No password on any command line or in any environment of the processes the pod runs.
    const procText =
      readFileSync(`/proc/${pid}/cmdline`, 'utf8') + readFileSync(`/proc/${pid}/environ`, 'utf8');
    expect(procText).toContain('redis-server');
    for (const pw of Object.values(PASSWORDS)) expect(procText).not.toContain(pw);
    expect(cli(port, ['info', 'clients'], operator)).toContain('maxclients:2048');
    expect(cli(port, ['info', 'persistence'], operator)).toContain('aof_enabled:0');
    // A cluster node that announces its pod's DNS name; alone it serves no slot until the
    // operator forms the cluster, so sharded pub/sub answers only once slots are assigned.
    expect(cli(port, ['cluster', 'info'], operator)).toContain('cluster_state:fail');
    expect(cli(port, ['cluster', 'nodes'], operator)).toContain(
      ',demo-redis-0-0.demo-redis-0.rt.svc ',
    );
    expect(cli(port, ['cluster', 'addslotsrange', '0', '16383'], operator)).toBe('OK');
    // Sharded pub/sub on the adapter's channels, which the Socket.IO servers rely on.
    await waitFor('the slots to be served', () =>
      Promise.resolve(
        cli(port, ['spublish', 'socket.io#/#room-x#', 'hi'], server) === '0' ? true : undefined,
      ),
    );
    // Neither the servers nor the operator may do anything else.
    expect(cli(port, ['spublish', 'room-x', 'hi'], server)).toMatch(/NOPERM/);
    expect(cli(port, ['cluster', 'addslots', '1'], server)).toMatch(/NOPERM/);
    for (const login of [
      server,
      operator,
      { user: U.replication, password: PASSWORDS.replication },
    ]) {
      for (const cmd of [
        ['flushall'],
        ['config', 'get', 'masterauth'],
        ['keys', '*'],
        ['acl', 'list'],
      ]) {
        expect(cli(port, cmd, login), `${login.user} ${cmd.join(' ')}`).toMatch(/NOPERM/);
      }
    }
  });

  it('the readiness probe passes against a live shard without any password, and fails without one', async () => {
    const { container } = shard({});
    const { port } = await startShard({});
    const probe = (p: number): number | null =>
      spawnSync(
        'sh',
        ['-c', container.readinessProbe.exec.command[2]!.replace('-p 6379', `-p ${p}`)],
        {
          env: { PATH: process.env.PATH },
        },
      ).status;
    expect(probe(port)).toBe(0);
    expect(probe(await freePort())).not.toBe(0);
  });

  it('keeps an append-only file only when persistence is enabled', async () => {
    expect(shard({ redis: { persistence: { enabled: true } } }).conf).toContain('appendonly yes');
    const { port } = await startShard({ redis: { persistence: { enabled: true } } });
    expect(cli(port, ['info', 'persistence'], operator)).toContain('aof_enabled:1');
  });

  it('never writes a password into the conf or the start script', () => {
    const { conf, start } = shard({});
    expect(conf).not.toContain('requirepass');
    expect(conf).toContain('include /run/redis/auth.conf');
    for (const pw of Object.values(PASSWORDS)) expect(conf + start).not.toContain(pw);
  });
});

describe('shard volumes', () => {
  const statefulSet = (spec: Record<string, unknown>): Record<string, unknown> => {
    const d = buildDesired(clusterFrom(manifest(spec)));
    const sts = d.objects.find((o: KubeObject) => o.kind === 'StatefulSet') as unknown as {
      spec: Record<string, unknown>;
    };
    return sts.spec;
  };

  it('deletes the PVCs with the cluster and on scale-in by default, and keeps them when asked', () => {
    expect(
      statefulSet({ redis: { persistence: { enabled: true } } })
        .persistentVolumeClaimRetentionPolicy,
    ).toEqual({ whenDeleted: 'Delete', whenScaled: 'Delete' });
    expect(
      statefulSet({
        redis: { persistence: { enabled: true, retentionPolicy: { whenDeleted: 'Retain' } } },
      }).persistentVolumeClaimRetentionPolicy,
    ).toEqual({ whenDeleted: 'Retain', whenScaled: 'Delete' });
    expect(statefulSet({}).persistentVolumeClaimRetentionPolicy).toBeUndefined();
  });
});
