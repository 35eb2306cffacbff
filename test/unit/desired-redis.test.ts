import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDesired, type KubeObject } from '../../operator/desired/index.js';
import { clusterFrom, manifest } from './helpers.js';
import { freePort, stop, waitFor } from './nginx-process.js';

/** The shard's own start command and probe, run against Debian's redis-server. */

interface Container {
  command: string[];
  readinessProbe: { exec: { command: string[] } };
}

function shard(spec: Record<string, unknown>): { conf: string; container: Container } {
  const objects = buildDesired(clusterFrom(manifest(spec))).objects;
  const cm = objects.find(
    (o: KubeObject) => o.metadata.name === 'demo-redis-config',
  ) as unknown as {
    data: Record<string, string>;
  };
  const sts = objects.find((o) => o.kind === 'StatefulSet') as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  return { conf: cm.data['redis.conf']!, container: sts.spec.template.spec.containers[0]! };
}

const PASSWORD = 'p@ss word $HOME';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function startShard(spec: Record<string, unknown>): Promise<{ port: number; dir: string }> {
  const { conf, container } = shard(spec);
  const dir = mkdtempSync(join(tmpdir(), 'socketfleet-redis-'));
  writeFileSync(join(dir, 'redis.conf'), conf);
  const port = await freePort();
  // The pod's command, with the mount path pointed at the temp dir and a free loopback port.
  const script = `${container.command[2]!.replace('/etc/redis/redis.conf', join(dir, 'redis.conf'))} --port ${port} --bind 127.0.0.1`;
  const child: ChildProcess = spawn('sh', ['-c', script], {
    cwd: dir,
    env: {
      ...process.env,
      REDIS_PASSWORD: PASSWORD,
      POD_NAME: 'demo-redis-0-0',
      POD_NAMESPACE: 'rt',
    },
    stdio: 'ignore',
  });
  cleanups.push(async () => {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('redis to answer', () => {
    const r = cli(port, ['ping'], PASSWORD);
    return Promise.resolve(r.includes('PONG') ? true : undefined);
  });
  return { port, dir };
}

function cli(port: number, args: string[], password?: string): string {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (password === undefined) delete env.REDISCLI_AUTH;
  else env.REDISCLI_AUTH = password;
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', env });
  return `${r.stdout}${r.stderr}`.trim();
}

describe('redis shard', { timeout: 60_000 }, () => {
  it('starts from the rendered conf with the password from the environment', async () => {
    const { port } = await startShard({ redis: { maxClients: 2048 } });
    expect(cli(port, ['ping'])).toContain('NOAUTH');
    expect(cli(port, ['ping'], 'wrong')).toMatch(/WRONGPASS|invalid/i);
    expect(cli(port, ['config', 'get', 'maxclients'], PASSWORD)).toBe('maxclients\n2048');
    expect(cli(port, ['config', 'get', 'appendonly'], PASSWORD)).toBe('appendonly\nno');
    expect(cli(port, ['config', 'get', 'save'], PASSWORD)).toBe('save');
    // A cluster node that announces its pod's DNS name; alone it serves no slot until the
    // operator forms the cluster, so sharded pub/sub answers only once slots are assigned.
    expect(cli(port, ['cluster', 'info'], PASSWORD)).toContain('cluster_state:fail');
    expect(cli(port, ['config', 'get', 'cluster-announce-hostname'], PASSWORD)).toBe(
      'cluster-announce-hostname\ndemo-redis-0-0.demo-redis-0.rt.svc',
    );
    expect(cli(port, ['config', 'get', 'cluster-require-full-coverage'], PASSWORD)).toBe(
      'cluster-require-full-coverage\nno',
    );
    expect(cli(port, ['cluster', 'addslotsrange', '0', '16383'], PASSWORD)).toBe('OK');
    // Sharded pub/sub, which the Socket.IO adapter relies on.
    await waitFor('the slots to be served', () =>
      Promise.resolve(cli(port, ['spublish', 'room-x', 'hi'], PASSWORD) === '0' ? true : undefined),
    );
  });

  it('the readiness probe passes only against a live shard', async () => {
    const { container } = shard({});
    const { port } = await startShard({});
    const probe = container.readinessProbe.exec.command[2]!.replace('-p 6379', `-p ${port}`);
    const ok = spawnSync('sh', ['-c', probe], { env: { ...process.env, REDISCLI_AUTH: PASSWORD } });
    expect(ok.status).toBe(0);
    const wrong = spawnSync('sh', ['-c', probe], {
      env: { ...process.env, REDISCLI_AUTH: 'nope' },
    });
    expect(wrong.status).not.toBe(0);
  });

  it('keeps an append-only file only when persistence is enabled', async () => {
    expect(shard({ redis: { persistence: { enabled: true } } }).conf).toContain('appendonly yes');
    const { port } = await startShard({ redis: { persistence: { enabled: true } } });
    expect(cli(port, ['config', 'get', 'appendonly'], PASSWORD)).toBe('appendonly\nyes');
  });

  it('never writes the password into the conf', () => {
    expect(shard({}).conf).not.toContain('requirepass');
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
