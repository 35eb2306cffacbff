import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { plaintextPingReply } from './support/plaintext-probe.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_ACL_RULES } from '../../operator/desired/redis-acl.js';
import { closeAllClients } from './support/clients.js';
import { Fleet, freePort, sleep, until, type ServerProcess } from './support/fleet.js';
import { makeCa, redisNodeCertExt, signCert } from './support/test-certs.js';
import { RoomTraffic } from './support/traffic.js';

// Issue 12 item 6 / issue 16 item 6: a TLS-only Redis Cluster, as spec.redis.external describes
// one (a CA, a client certificate for mutual TLS, an ACL user and its password file). Real
// redis-server 7.0.15 processes with tls-port only (no plain listener) and TLS on the cluster
// bus, certificates made by openssl here; the servers read exactly the variables and files the
// operator gives a server pod (REDIS_TLS*, REDIS_USERNAME, REDIS_PASSWORD_FILE).
const USER = 'chat-app';
const PASSWORD = 'tls-test-password';
const ADMIN_PASSWORD = 'tls-test-admin';

describe('servers on a TLS-only external Redis Cluster (CA, client certificate, ACL user)', () => {
  const fleet = new Fleet('redis-tls');
  const dir = fleet.dir;
  const f = (name: string): string => join(dir, name);
  const seeds: { host: string; port: number }[] = [];
  let servers: ServerProcess[] = [];

  /** A server logging in the way a pod does, with TLS settings overridden per test. */
  const server = (tls: Record<string, string>, waitReady = true): Promise<ServerProcess> =>
    fleet.server(
      { seeds: () => seeds, serverEnv: () => ({}) },
      {},
      {
        waitReady,
        env: {
          REDIS_USERNAME: USER,
          REDIS_PASSWORD_FILE: f('password'),
          REDIS_PASSWORD: '',
          REDIS_TLS: 'true',
          REDIS_TLS_CA_FILE: f('ca.crt'),
          REDIS_TLS_CERT_FILE: f('client.crt'),
          REDIS_TLS_KEY_FILE: f('client.key'),
          ...tls,
        },
      },
    );

  beforeAll(async () => {
    makeCa(dir, 'ca');
    makeCa(dir, 'other-ca');
    signCert(dir, 'node', 'ca', redisNodeCertExt('DNS:localhost,IP:127.0.0.1'));
    signCert(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
    writeFileSync(f('password'), PASSWORD + '\n', { mode: 0o600 });
    // The external cluster's own users: the app's user has the servers' rules.
    writeFileSync(
      f('acl.conf'),
      [
        'user default off',
        `user ${USER} on >${PASSWORD} ${REDIS_ACL_RULES.server}`,
        `user admin on >${ADMIN_PASSWORD} ~* &* +@all`,
        'masteruser admin',
        `masterauth ${ADMIN_PASSWORD}`,
      ].join('\n') + '\n',
      { mode: 0o600 },
    );
    for (let i = 0; i < 3; i++) {
      const [port, bus] = [await freePort(), await freePort()];
      fleet.spawn(`redis-tls-${port}`, 'redis-server', [
        f('acl.conf'),
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--cluster-port',
        String(bus),
        '--bind',
        '127.0.0.1',
        '--tls-cert-file',
        f('node.crt'),
        '--tls-key-file',
        f('node.key'),
        '--tls-ca-cert-file',
        f('ca.crt'),
        '--tls-auth-clients',
        'yes',
        '--tls-cluster',
        'yes',
        '--tls-replication',
        'yes',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-announce-hostname',
        'localhost',
        '--cluster-preferred-endpoint-type',
        'hostname',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ]);
      seeds.push({ host: 'localhost', port });
    }
    const cli = (args: string[]): { status: number | null; out: string } => {
      const r = spawnSync(
        'redis-cli',
        [
          '--tls',
          '--cacert',
          f('ca.crt'),
          '--cert',
          f('client.crt'),
          '--key',
          f('client.key'),
          '--user',
          'admin',
          ...args,
        ],
        { encoding: 'utf8', env: { ...process.env, REDISCLI_AUTH: ADMIN_PASSWORD } },
      );
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    await until('the TLS nodes to answer', () =>
      seeds.every((s) => cli(['-p', String(s.port), 'ping']).out.includes('PONG')),
    );
    const formed = cli([
      '--cluster',
      'create',
      ...seeds.map((s) => `127.0.0.1:${s.port}`),
      '--cluster-yes',
    ]);
    expect(formed.status, formed.out).toBe(0);
    await until('cluster_state:ok on every node', () =>
      seeds.every((s) =>
        cli(['-p', String(s.port), 'cluster', 'info']).out.includes('cluster_state:ok'),
      ),
    );
  });

  afterAll(async () => {
    closeAllClients();
    await fleet.stopAll();
  });

  it('a plain TCP client gets no answer from a TLS port', async () => {
    const reply = await plaintextPingReply(seeds[0]!.port, 2000);
    expect(reply).not.toContain('PONG');
  });

  it('servers connect with the CA, the client certificate and the ACL user, and deliver every message', async () => {
    servers = await Promise.all([0, 1].map(() => server({})));
    const rooms = ['tls-a', 'tls-b', 'tls-c', 'tls-d'];
    const traffic = await RoomTraffic.start(servers, rooms, { perRoomPerSecond: 10 });
    await sleep(3000);
    await traffic.stop();
    const report = traffic.report();
    expect(report.sent).toBeGreaterThan(0);
    expect(report.lostDeliveries).toBe(0);
    expect(report.duplicates).toBe(0);
  });

  it('a server that does not trust the nodes (another CA), or lacks the client certificate, never becomes ready', async () => {
    const wrongCa = await server({ REDIS_TLS_CA_FILE: f('other-ca.crt') }, false);
    const noClientCert = await server({ REDIS_TLS_CERT_FILE: '', REDIS_TLS_KEY_FILE: '' }, false);
    await sleep(6000);
    expect(await wrongCa.readyz()).not.toBe(200);
    expect(await noClientCert.readyz()).not.toBe(200);
    // Neither logs a secret while failing.
    for (const s of [wrongCa, noClientCert]) expect(s.logs()).not.toContain(PASSWORD);
  });
});
