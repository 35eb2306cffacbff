import type { RealtimeCluster } from '../api/realtimecluster.js';
import { pullPolicy } from './security.js';

/**
 * Sysctls the kubelet allows without --allowed-unsafe-sysctls (Kubernetes docs, "Using sysctls
 * in a Kubernetes Cluster"), with the release that made each safe. Newer entries fail on older
 * kubelets, so only ask for what the user set.
 */
export const SAFE_SYSCTLS: ReadonlySet<string> = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range', // 1.18
  'net.ipv4.ip_unprivileged_port_start', // 1.22
  'net.ipv4.ip_local_reserved_ports', // 1.27
  'net.ipv4.tcp_keepalive_time', // 1.29
  'net.ipv4.tcp_fin_timeout', // 1.29
  'net.ipv4.tcp_keepalive_intvl', // 1.29
  'net.ipv4.tcp_keepalive_probes', // 1.29
  'net.ipv4.tcp_rmem', // 1.32
  'net.ipv4.tcp_wmem', // 1.32
]);

export const NOFILE_ENV = 'SOCKETFLEET_NOFILE';

export interface ServerTuning {
  initContainers: Record<string, unknown>[];
  podSysctls: { name: string; value: string }[];
  env: { name: string; value: string }[];
  warnings: string[];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The init script stops at the first sysctl the kernel refuses, naming it, so the pod never runs half-tuned. */
export function sysctlScript(sysctls: Readonly<Record<string, string>>): string {
  const lines = ['set -e'];
  for (const [key, value] of Object.entries(sysctls).sort(([a], [b]) => a.localeCompare(b))) {
    const kv = shellQuote(`${key}=${value}`);
    lines.push(
      `sysctl -w ${kv} || { echo ${shellQuote(`socketfleet: cannot set sysctl ${key}`)} >&2; exit 1; }`,
    );
  }
  return lines.join('\n');
}

export function buildServerTuning(cluster: RealtimeCluster): ServerTuning {
  const t = cluster.spec.tuning;
  const sorted = Object.entries(t.sysctls).sort(([a], [b]) => a.localeCompare(b));
  const nofileEnv = [{ name: NOFILE_ENV, value: String(t.nofile) }];
  switch (t.mode) {
    case 'off':
      return { initContainers: [], podSysctls: [], env: [], warnings: [] };
    case 'safe-sysctls': {
      const safe = sorted.filter(([k]) => SAFE_SYSCTLS.has(k));
      const unsafe = sorted.filter(([k]) => !SAFE_SYSCTLS.has(k)).map(([k]) => k);
      const warnings =
        unsafe.length > 0
          ? [
              `spec.tuning.sysctls: ${unsafe.join(', ')} not set because safe-sysctls mode only sets the kubelet's safe sysctls; use privileged-init to set them.`,
            ]
          : [];
      return {
        initContainers: [],
        podSysctls: safe.map(([name, value]) => ({ name, value })),
        env: nofileEnv,
        warnings,
      };
    }
    case 'privileged-init':
      if (sorted.length === 0)
        return { initContainers: [], podSysctls: [], env: nofileEnv, warnings: [] };
      return {
        initContainers: [
          {
            name: 'sysctl',
            image: t.initImage,
            ...pullPolicy(cluster.spec.imagePullPolicy),
            command: ['sh', '-c', sysctlScript(t.sysctls)],
            securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false },
            resources: {
              requests: { cpu: '10m', memory: '16Mi' },
              limits: { memory: '32Mi' },
            },
          },
        ],
        podSysctls: [],
        env: nofileEnv,
        warnings: [],
      };
  }
}
