import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as ioClient, type Socket } from 'socket.io-client';
import * as msgpackParser from 'socket.io-msgpack-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRealtimeCluster } from '../../operator/api/parse.js';
import type { RealtimeCluster } from '../../operator/api/realtimecluster.js';
import { buildGatewayDeployment } from '../../operator/desired/gateway.js';
import {
  kubernetesNginxRuntime,
  NGINX_CONF_DIR,
  NGINX_CONF_FILE,
  NGINX_TMP_DIR,
  renderNginxConf,
  renderUpstreamBlock,
} from '../../operator/desired/nginx.js';
import { NGINX_UID, REDIS_UID, SERVER_UID } from '../../operator/desired/security.js';
import { closeAllClients, collect, connect } from '../dataplane/support/clients.js';
import { freePort, ROOT, sleep, until } from '../dataplane/support/fleet.js';
import { bindMount, Containerd, tmpfsMount } from './containerd.js';

// The images test/images/build.sh makes, proven without a Kubernetes node: each archive imports
// into a containerd of the test's own, and the containers run as the operator's pods run them
// (the image's non-root user, read-only root filesystem): Redis from our image, the server image
// against it, and nginx from our image with the gateway's rendered nginx.conf and reloader in
// front, carrying a real socket.io-client's room traffic. Pods on a real node are test/e2e's job.

const REFS = {
  server: 'socketfleet/server:0.1.0',
  chat: 'socketfleet/chat:0.1.0',
  operator: 'socketfleet/operator:0.1.0',
  redis: 'localhost/redis:7.0.15',
  nginx: 'localhost/nginx:1.22.1',
  busybox: 'localhost/busybox:1.35.0',
  pause: 'localhost/pause:catatonit-0.1.7',
};
const CONTAINERD_NAME: Record<string, string> = {
  [REFS.server]: 'docker.io/socketfleet/server:0.1.0',
  [REFS.chat]: 'docker.io/socketfleet/chat:0.1.0',
  [REFS.operator]: 'docker.io/socketfleet/operator:0.1.0',
};
const imported = (ref: string): string => CONTAINERD_NAME[ref] ?? ref;

function gatewayCluster(): RealtimeCluster {
  const parsed = parseRealtimeCluster({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name: 'images' },
    spec: {},
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.cluster;
}

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('images built from the Dockerfiles and Debian packages', () => {
  let outDir: string;
  let tsv: [string, string][];
  let work: string;
  let containerd: Containerd;
  const chatSockets: Socket[] = [];

  beforeAll(async () => {
    // Warm (CI builds them in an earlier step): seconds. Cold: about ten minutes. Asynchronous,
    // so vitest's worker keeps answering its runner meanwhile.
    const build = spawn('bash', [join(ROOT, 'test/images/build.sh')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    build.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const code = await new Promise<number | null>((resolve) => build.once('close', resolve));
    if (code !== 0) throw new Error(`test/images/build.sh exited with ${code}`);
    outDir = stdout.trim().split('\n').at(-1)!;
    tsv = readFileSync(join(outDir, 'images.tsv'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split('\t') as [string, string]);
    work = mkdtempSync(join(tmpdir(), 'socketfleet-images-'));
    chmodSync(work, 0o755);
    containerd = await Containerd.start(join(work, 'containerd'));
    for (const [, archive] of tsv) await containerd.ctr('image', 'import', join(outDir, archive));
  }, 3_600_000);

  afterAll(async () => {
    closeAllClients();
    for (const s of chatSockets) s.close();
    await containerd?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('lists every image once in images.tsv, and each archive imports under the name pods use', async () => {
    expect(tsv.map(([ref]) => ref).sort()).toEqual(Object.values(REFS).sort());
    const names = (await containerd.ctr('image', 'ls', '--quiet')).trim().split('\n');
    for (const ref of Object.values(REFS)) expect(names).toContain(imported(ref));
  });

  it('runs every image as the non-root user its pods use, on the Node.js major the tests run', async () => {
    const id = async (ref: string): Promise<string> =>
      (await containerd.runOnce(imported(ref), [], ['id', '-u'])).trim();
    expect(await id(REFS.server)).toBe(String(SERVER_UID));
    expect(await id(REFS.chat)).toBe(String(SERVER_UID));
    expect(await id(REFS.operator)).toBe('65532');
    expect(await id(REFS.redis)).toBe(String(REDIS_UID));
    expect(await id(REFS.nginx)).toBe(String(NGINX_UID));
    for (const ref of [REFS.server, REFS.operator]) {
      const version = await containerd.runOnce(imported(ref), [], ['node', '--version']);
      expect(version.trim().split('.')[0]).toBe(`v${process.versions.node.split('.')[0]}`);
    }
  });

  it('installs only the server runtime dependencies in the server image, and the operator CLI runs', async () => {
    const modules = await containerd.runOnce(
      imported(REFS.server),
      [],
      ['ls', '/app/node_modules', '/app/node_modules/@socket.io'],
    );
    for (const wanted of ['socket.io', 'ioredis', 'bufferutil', 'pino', 'zod', 'redis-adapter'])
      expect(modules).toMatch(new RegExp(`^${wanted}$`, 'm'));
    for (const unwanted of [
      '@kubernetes',
      'hdr-histogram-js',
      'socket.io-client',
      'yaml',
      'vitest',
      'typescript',
    ])
      expect(modules).not.toMatch(new RegExp(`^${unwanted}$`, 'm'));
    // The operator image, for contrast, needs the Kubernetes client, and its CLI runs from dist/.
    const crd = await containerd.runOnce(
      imported(REFS.operator),
      [],
      ['node', '/app/bin/socketfleet.js', 'crd'],
    );
    expect(crd).toContain('name: realtimeclusters.socketfleet.dev');
    await containerd.runOnce(
      imported(REFS.operator),
      [],
      ['ls', '/app/node_modules/@kubernetes/client-node'],
    );
  });

  it('gives the init container sh, sysctl and ulimit, and the sandbox a pause process', async () => {
    const out = await containerd.runOnce(
      imported(REFS.busybox),
      [],
      ['sh', '-c', 'sysctl -n net.core.somaxconn && ulimit -Hn'],
    );
    expect(out.trim().split('\n')).toHaveLength(2);
    // catatonit -P sleeps until signalled; it must still be running a second later.
    await containerd.runDetached(imported(REFS.pause), 'pause', []);
    await sleep(1000);
    expect(await containerd.ctr('task', 'ls')).toMatch(/^pause\s+\d+\s+RUNNING$/m);
  });

  it('carries room traffic from a socket.io-client through nginx and the server to Redis and back', async () => {
    const [redisPort, busPort, port, opsPort, gwPort, healthPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];

    await containerd.runDetached(
      imported(REFS.redis),
      'redis',
      [...tmpfsMount('/tmp')],
      [
        'redis-server',
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        // A one-node Redis Cluster, as the servers speak only cluster mode.
        '--cluster-enabled',
        'yes',
        // Its bus would default to port + 10000, past 65535 for many free ports.
        '--cluster-port',
        String(busPort),
        // A node that never met another does not know its own address; the servers follow the
        // address the slot map gives.
        '--cluster-announce-ip',
        '127.0.0.1',
        '--dir',
        '/tmp',
      ],
    );
    // redis-cli's output can be whitespace alone before Redis answers (seen once in CI, where the
    // wait took it for an answer): only PONG is one.
    const ping = await until('Redis to answer redis-cli', async () => {
      const out = await containerd.runOnce(
        imported(REFS.redis),
        ['--net-host'],
        ['redis-cli', '-p', String(redisPort), 'ping'],
      );
      return out.trim() === 'PONG' ? out : undefined;
    });
    expect(ping.trim()).toBe('PONG');
    const cli = (...args: string[]): Promise<string> =>
      containerd.runOnce(
        imported(REFS.redis),
        ['--net-host'],
        ['redis-cli', '-p', String(redisPort), ...args],
      );
    await cli('cluster', 'addslotsrange', '0', '16383');
    await until('the one-node Redis Cluster to be ok', async () =>
      (await cli('cluster', 'info')).includes('cluster_state:ok'),
    );

    // The server image's own entrypoint (tini, entrypoint.sh) with the config the operator mounts.
    const configDir = join(work, 'server-config');
    mkdirSync(configDir, { mode: 0o755 });
    writeFileSync(
      join(configDir, 'server.json'),
      JSON.stringify({
        port,
        opsPort,
        redis: { nodes: [{ host: '127.0.0.1', port: redisPort }] },
      }),
      { mode: 0o644 },
    );
    await containerd.runDetached(
      imported(REFS.server),
      'server',
      bindMount(configDir, '/etc/socketfleet'),
    );
    await until(
      'the server container to be ready',
      async () => {
        const r = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
        return r.status === 200;
      },
      60_000,
    );

    // nginx with the conf and command of the gateway pod, on free ports instead of 8080/8081.
    const cluster = gatewayCluster();
    const confDir = join(work, 'nginx-conf');
    mkdirSync(confDir, { mode: 0o755 });
    const confPath = join(confDir, NGINX_CONF_FILE);
    const render = (upstreamPort: number): string =>
      renderNginxConf(cluster, [{ ip: '127.0.0.1', port: upstreamPort }], {
        ...kubernetesNginxRuntime(cluster),
        listenPort: gwPort,
        healthPort,
      });
    writeFileSync(confPath, render(port), { mode: 0o644 });
    const runDir = join(work, 'nginx-run');
    mkdirSync(runDir);
    chmodSync(runDir, 0o1777);
    writeFileSync(
      join(runDir, 'upstreams.conf'),
      renderUpstreamBlock(cluster.spec.gateway.balance, [{ ip: '127.0.0.1', port }]),
      { mode: 0o644 },
    );
    const deployment = buildGatewayDeployment(cluster) as unknown as {
      spec: { template: { spec: { containers: { name: string; command: string[] }[] } } };
    };
    const nginxCommand = deployment.spec.template.spec.containers.find(
      (c) => c.name === 'nginx',
    )!.command;
    await containerd.runDetached(
      imported(REFS.nginx),
      'nginx',
      [
        ...bindMount(confDir, NGINX_CONF_DIR),
        // In the pod the sync sidecar writes the upstream block here; the test writes it once.
        '--mount',
        `type=bind,src=${runDir},dst=${NGINX_TMP_DIR},options=rbind:rw`,
      ],
      nginxCommand,
    );
    await until(
      'the gateway to be ready',
      async () => {
        const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
        return r.status === 200;
      },
      60_000,
    );

    const url = `http://127.0.0.1:${gwPort}`;
    const [member, publisher] = await Promise.all([
      connect(url, { transports: ['polling', 'websocket'] }),
      connect(url, { transports: ['polling', 'websocket'] }),
    ]);
    const got = collect(member);
    expect(await member.emitWithAck('join', 'images')).toMatchObject({ ok: true, room: 'images' });
    expect(
      await publisher.emitWithAck('publish', { room: 'images', data: 'through the images' }),
    ).toEqual({
      ok: true,
    });
    await until('the member to receive', () => got.length === 1);
    expect(got[0]).toMatchObject({ room: 'images', data: 'through the images' });

    // The chat example's image (FROM the server image) on the same Redis: its own app runs
    // through the same entrypoint, in a dynamic namespace, with its middleware auth.
    const [chatPort, chatOpsPort] = [await freePort(), await freePort()];
    const chatConfig = join(work, 'chat-config');
    mkdirSync(chatConfig, { mode: 0o755 });
    writeFileSync(
      join(chatConfig, 'server.json'),
      JSON.stringify({
        port: chatPort,
        opsPort: chatOpsPort,
        redis: { nodes: [{ host: '127.0.0.1', port: redisPort }] },
      }),
      { mode: 0o644 },
    );
    await containerd.runDetached(
      imported(REFS.chat),
      'chat',
      bindMount(chatConfig, '/etc/socketfleet'),
    );
    await until(
      'the chat container to be ready',
      async () => (await fetch(`http://127.0.0.1:${chatOpsPort}/readyz`)).status === 200,
      60_000,
    );
    const chatClient = (name: string): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = ioClient(`http://127.0.0.1:${chatPort}/team-images`, {
          transports: ['websocket'],
          parser: msgpackParser,
          forceNew: true,
          reconnection: false,
          auth: { name },
        });
        chatSockets.push(s);
        s.once('connect', () => resolve(s));
        s.once('connect_error', reject);
      });
    const [ann, bob] = [await chatClient('ann'), await chatClient('bob')];
    expect(await ann.emitWithAck('join', 'general')).toEqual({ ok: true, members: ['ann'] });
    expect(await bob.emitWithAck('join', 'general')).toEqual({ ok: true, members: ['ann', 'bob'] });
    const said = new Promise<unknown[]>((resolve) => ann.once('said', (...args) => resolve(args)));
    expect(await bob.emitWithAck('say', 'general', 'hi', Buffer.from([1, 2]))).toMatchObject({
      ok: true,
    });
    const [channel, from, text, , picture] = await said;
    expect([channel, from, text]).toEqual(['general', 'bob', 'hi']);
    expect(Buffer.from(picture as Uint8Array)).toEqual(Buffer.from([1, 2]));
  }, 300_000);
});
