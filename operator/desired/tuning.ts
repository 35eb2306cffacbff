import type { RealtimeCluster } from '../api/realtimecluster.js';
import { SAFE_SYSCTLS as SAFE_SYSCTL_LIST } from '../api/sysctls.js';
import { DEFAULT_SYSCTLS } from '../api/realtimecluster.js';
import { pullPolicy } from './security.js';

/** The kubelet's safe sysctls (operator/api/sysctls.ts is where the list lives). */
export const SAFE_SYSCTLS: ReadonlySet<string> = new Set(SAFE_SYSCTL_LIST);

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
      // The schema refuses any other key the user asked for, so what is left here beyond the
      // safe and kubelet-allowed ones are defaults this mode cannot set: dropped without a word.
      const allowed = new Set(t.kubeletAllowedUnsafeSysctls);
      const settable = sorted.filter(([k]) => SAFE_SYSCTLS.has(k) || allowed.has(k));
      const refused = sorted.filter(
        ([k, v]) => !SAFE_SYSCTLS.has(k) && !allowed.has(k) && DEFAULT_SYSCTLS[k] !== v,
      );
      const warnings =
        refused.length > 0
          ? [
              `spec.tuning.sysctls: ${refused.map(([k]) => k).join(', ')} not set because safe-sysctls mode only sets the kubelet's safe sysctls and tuning.kubeletAllowedUnsafeSysctls.`,
            ]
          : [];
      return {
        initContainers: [],
        podSysctls: settable.map(([name, value]) => ({ name, value })),
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
