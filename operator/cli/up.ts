import { existsSync, readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { parseRealtimeCluster } from '../api/parse.js';
import type { RealtimeCluster } from '../api/realtimecluster.js';
import { LocalCluster } from '../local/cluster.js';
import { ensureBinaries } from '../local/deps.js';
import { canConnect } from '../local/ports.js';
import { CrashBackoff } from '../local/crash-backoff.js';
import { packageRoot } from '../local/paths.js';
import { killAllSupervised } from '../local/process.js';
import { formatStatusTable } from '../local/status-table.js';
import { watchText } from '../local/watch.js';

export const UP_USAGE = `Usage: socketfleet up -f FILE [--port PORT] [--state-dir DIR]

Runs the RealtimeCluster in FILE on this machine: a Redis Cluster of redis-server processes
(spec.redis.shards x (1 + replicasPerShard), formed and resharded like the operator does), spec.replicas
Socket.IO servers from the server image's entrypoint, and nginx with the operator's nginx.conf.
Edits to FILE are applied while it runs (scale, shards, settings); Ctrl-C stops everything.

  -f, --file FILE     the RealtimeCluster manifest (the same one you kubectl apply)
  --port PORT         gateway port on 127.0.0.1 (default 8080)
  --state-dir DIR     configs, logs and status.json (default .socketfleet/<name>)
`;

type Loaded = { ok: true; cluster: RealtimeCluster } | { ok: false; problems: string[] };

export function loadClusterText(text: string): Loaded {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return {
      ok: false,
      problems: [`document: is not valid YAML (${(err as Error).message.split('\n')[0] ?? ''})`],
    };
  }
  return parseRealtimeCluster(doc);
}

function stamp(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: 'string', short: 'f' },
        port: { type: 'string' },
        'state-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`socketfleet up: ${(err as Error).message}\n${UP_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(UP_USAGE);
    return 0;
  }
  if (values.file === undefined) {
    process.stderr.write(
      `socketfleet up: -f FILE is required, e.g. socketfleet up -f examples/local.yaml\n`,
    );
    return 2;
  }
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`socketfleet up: --port must be a port number, got "${values.port}".\n`);
    return 2;
  }
  const file = resolve(values.file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    process.stderr.write(
      `socketfleet up: cannot read ${values.file}; pass the path of a RealtimeCluster manifest.\n`,
    );
    return 1;
  }
  const loaded = loadClusterText(text);
  if (!loaded.ok) {
    process.stderr.write(
      `socketfleet up: ${values.file} is not a valid RealtimeCluster:\n${loaded.problems.map((p) => `  ${p}\n`).join('')}`,
    );
    return 1;
  }
  let current = loaded.cluster;
  const name = current.metadata.name;
  if (current.spec.gateway.mode === 'managed' && (await canConnect(port))) {
    process.stderr.write(
      `socketfleet up: port ${port} is already in use; pass --port with a free port.\n`,
    );
    return 1;
  }
  if (!existsSync(join(packageRoot(), 'dist', 'server-image', 'src', 'main.js'))) {
    process.stderr.write(
      'socketfleet up: the server image is not built; run npm run build (npm ci runs it too).\n',
    );
    return 1;
  }
  const bins = ensureBinaries(stamp);
  if ('error' in bins) {
    process.stderr.write(`socketfleet up: ${bins.error}\n`);
    return 1;
  }
  const stateDir = resolve(values['state-dir'] ?? join('.socketfleet', name));
  const local = new LocalCluster({ stateDir, gatewayPort: port, binaries: bins, log: stamp });

  // Whatever happens below, never leave a process group behind.
  process.on('exit', killAllSupervised);
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      stamp('stopping: gateway, servers, redis');
      await local.stop();
      stamp('stopped');
    })();
    return stopping;
  };
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) {
      killAllSupervised();
      finish(130);
      return;
    }
    void shutdown().then(() => finish(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const printStatus = (): void => {
    process.stdout.write(`\n${formatStatusTable(local.status())}\n`);
    process.stdout.write(
      local.url
        ? `\nSocket.IO URL: ${local.url}\n\n`
        : '\nNo gateway (gateway.mode: none); connect to a server address above.\n\n',
    );
  };

  try {
    stamp(
      `starting ${name}: ${current.spec.redis.shards} shard(s) x ${current.spec.redis.replicasPerShard + 1} Redis node(s), ${current.spec.replicas} server(s), state in ${stateDir}`,
    );
    await local.start(current);
  } catch (err) {
    process.stderr.write(`socketfleet up: ${(err as Error).message}\n`);
    await shutdown();
    return 1;
  }
  if (stopping) return done;
  printStatus();
  if (current.spec.tuning.mode !== 'off') {
    stamp(
      "spec.tuning (sysctls, nofile) applies to Kubernetes pods; up leaves this machine's kernel settings alone",
    );
  }
  if (current.spec.gateway.tls !== undefined) {
    stamp(
      'spec.gateway.tls applies to Kubernetes pods (the certificate is a Secret there); up serves plain HTTP',
    );
  }
  if (current.spec.redis.tls !== undefined) {
    stamp(
      'spec.redis.tls applies to Kubernetes pods (the certificate is a Secret there); up runs Redis in plain TCP on loopback',
    );
  }
  if (current.spec.gateway.exporter.enabled || current.spec.redis.exporter.enabled) {
    stamp(
      'spec.gateway.exporter and spec.redis.exporter add sidecars to Kubernetes pods; up runs none',
    );
  }
  stamp(`watching ${values.file} for changes; Ctrl-C stops everything`);

  // Serialise applies and coalesce edits that arrive while one runs: only the newest spec matters.
  let queued: RealtimeCluster | undefined;
  let applying = false;
  const schedule = (c: RealtimeCluster): void => {
    queued = c;
    if (applying) return;
    applying = true;
    void (async () => {
      while (queued && !stopping) {
        const next = queued;
        queued = undefined;
        try {
          await local.apply(next);
          printStatus();
        } catch (err) {
          stamp(`apply failed: ${(err as Error).message}; fix the file or wait for the next retry`);
        }
      }
      applying = false;
    })();
  };
  const unwatch = watchText(file, (changed) => {
    const l = loadClusterText(changed);
    if (!l.ok) {
      stamp(
        `${values.file} is not valid; still running the previous spec:\n${l.problems.map((p) => `  ${p}`).join('\n')}`,
      );
      return;
    }
    if (l.cluster.metadata.name !== name) {
      stamp(
        `metadata.name changed from ${name} to ${l.cluster.metadata.name}; stop up and start it again to run a different cluster`,
      );
      return;
    }
    stamp(
      `${values.file} changed: replicas ${l.cluster.spec.replicas}, shards ${l.cluster.spec.redis.shards}; applying`,
    );
    current = l.cluster;
    schedule(current);
  });
  // Level-based healing: a process that died is replaced on a later pass, after a delay that
  // grows while processes keep crashing (CrashBackoff), so a crash loop does not spin.
  const backoff = new CrashBackoff();
  let healAt: number | undefined;
  const heal = setInterval(() => {
    if (applying || stopping) return;
    const down = local.status().filter((r) => !r.ready);
    if (down.length === 0) return;
    const now = Date.now();
    if (healAt === undefined) {
      const { restart, delayMs } = backoff.crashed(now);
      healAt = now + delayMs;
      stamp(
        `${down.map((r) => r.component).join(', ')} exited; restart ${restart} in ${delayMs / 1000}s`,
      );
    }
    if (now < healAt) return;
    healAt = undefined;
    backoff.restarted(now);
    schedule(current);
  }, 250);

  const code = await done;
  unwatch();
  clearInterval(heal);
  killAllSupervised();
  return code;
}
