import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDesired, type KubeObject } from '../../operator/desired/index.js';
import { buildServerTuning, sysctlScript } from '../../operator/desired/tuning.js';
import { clusterFrom, manifest } from './helpers.js';

interface PodSpec {
  initContainers?: { name: string; command: string[]; securityContext: Record<string, unknown> }[];
  securityContext: { sysctls?: { name: string; value: string }[] };
  containers: { env: { name: string; value?: string }[] }[];
}

function serverPod(spec: Record<string, unknown>): { pod: PodSpec; warnings: string[] } {
  const d = buildDesired(clusterFrom(manifest(spec)));
  const dep = d.objects.find(
    (o: KubeObject) => o.kind === 'Deployment' && o.metadata.name === 'demo-server',
  ) as unknown as { spec: { template: { spec: PodSpec } } };
  return { pod: dep.spec.template.spec, warnings: d.warnings };
}

const env = (pod: PodSpec, name: string): string | undefined =>
  pod.containers[0]!.env.find((e) => e.name === name)?.value;

describe('tuning', () => {
  it('privileged-init sets every sysctl from a privileged init container', () => {
    const { pod, warnings } = serverPod({});
    expect(warnings).toEqual([]);
    const init = pod.initContainers![0]!;
    expect(init.securityContext).toMatchObject({ privileged: true });
    expect(init.command[2]).toContain("sysctl -w 'net.core.somaxconn=65535'");
    expect(init.command[2]).toContain("sysctl -w 'net.ipv4.ip_local_port_range=1024 65535'");
    expect(pod.securityContext.sysctls).toBeUndefined();
    expect(env(pod, 'SOCKETFLEET_NOFILE')).toBe('1048576');
  });

  it('safe-sysctls keeps only the safe set and drops the defaults it cannot set quietly', () => {
    const { pod, warnings } = serverPod({ tuning: { mode: 'safe-sysctls', nofile: 65536 } });
    expect(pod.initContainers).toBeUndefined();
    expect(pod.securityContext.sysctls).toEqual([
      { name: 'net.ipv4.ip_local_port_range', value: '1024 65535' },
      { name: 'net.ipv4.tcp_fin_timeout', value: '15' },
      { name: 'net.ipv4.tcp_keepalive_time', value: '300' },
    ]);
    expect(warnings).toEqual([]);
    expect(env(pod, 'SOCKETFLEET_NOFILE')).toBe('65536');
  });

  it('safe-sysctls also sets what kubeletAllowedUnsafeSysctls lists, without a privileged container', () => {
    const { pod, warnings } = serverPod({
      tuning: {
        mode: 'safe-sysctls',
        sysctls: { 'net.core.somaxconn': '4096', 'net.ipv4.tcp_fin_timeout': '10' },
        kubeletAllowedUnsafeSysctls: ['net.core.somaxconn'],
      },
    });
    expect(pod.initContainers).toBeUndefined();
    expect(pod.securityContext.sysctls).toEqual([
      { name: 'net.core.somaxconn', value: '4096' },
      { name: 'net.ipv4.tcp_fin_timeout', value: '10' },
    ]);
    expect(warnings).toEqual([]);
  });

  it('the privileged init image is pinned by digest by default', () => {
    const { pod } = serverPod({});
    expect((pod.initContainers![0] as unknown as { image: string }).image).toMatch(
      /^busybox:1\.37@sha256:[0-9a-f]{64}$/,
    );
  });

  it('off touches nothing', () => {
    const { pod, warnings } = serverPod({ tuning: { mode: 'off' } });
    expect(pod.initContainers).toBeUndefined();
    expect(pod.securityContext.sysctls).toBeUndefined();
    expect(env(pod, 'SOCKETFLEET_NOFILE')).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('an empty sysctl map needs no init container', () => {
    const t = buildServerTuning(clusterFrom(manifest({ tuning: { sysctls: {} } })));
    expect(t.initContainers).toEqual([]);
  });
});

describe('the init script, run by a real shell', () => {
  const dir = mkdtempSync(join(tmpdir(), 'socketfleet-sysctl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // A stand-in sysctl that records its argument and refuses one key, like a kernel without it.
  writeFileSync(
    join(dir, 'sysctl'),
    `#!/bin/sh\necho "$2" >> "${dir}/calls"\ncase "$2" in net.core.somaxconn=*) echo "sysctl: permission denied" >&2; exit 1;; esac\n`,
  );
  chmodSync(join(dir, 'sysctl'), 0o755);

  function run(sysctls: Record<string, string>): {
    status: number | null;
    stderr: string;
    calls: string;
  } {
    rmSync(join(dir, 'calls'), { force: true });
    const r = spawnSync('sh', ['-c', sysctlScript(sysctls)], {
      encoding: 'utf8',
      env: { PATH: `${dir}:/usr/bin:/bin` },
    });
    let calls = '';
    try {
      calls = spawnSync('cat', [join(dir, 'calls')], { encoding: 'utf8' }).stdout;
    } catch {
      calls = '';
    }
    return { status: r.status, stderr: r.stderr, calls };
  }

  it('passes values with spaces and quotes as one argument', () => {
    const r = run({ 'net.ipv4.ip_local_port_range': '1024 65535', 'kernel.x': "it's" });
    expect(r.status).toBe(0);
    expect(r.calls).toBe("kernel.x=it's\nnet.ipv4.ip_local_port_range=1024 65535\n");
  });

  it('fails loudly, naming the sysctl, and stops there', () => {
    const r = run({ 'net.core.somaxconn': '65535', 'net.ipv4.tcp_tw_reuse': '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('socketfleet: cannot set sysctl net.core.somaxconn');
    expect(r.calls).toBe('net.core.somaxconn=65535\n');
  });
});
