// The contained real node itself: it is Ready, runs a pod, serves cluster DNS and
// Service IPs, and none of its addresses exist outside its network namespace.
import { execFileSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { waitFor } from '../cluster/harness.js';
import { attachNode, NODE_IP } from './harness.js';

const node = attachNode(inject('socketfleetNodeRun'));

/** Resolves NAME through the cluster DNS Service, from inside the node's namespace. */
async function resolveInNode(name: string): Promise<string[]> {
  const script = `const r = new (require('node:dns').promises.Resolver)(); r.setServers(['10.215.0.10']);
    r.resolve4(${JSON.stringify(name)}).then((a) => console.log(JSON.stringify(a)), (e) => { console.error(e.code); process.exit(1); });`;
  const r = await node.inNetns(process.execPath, ['-e', script]);
  if (r.code !== 0) throw new Error(`resolving ${name}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as string[];
}

describe('real node', () => {
  it('is Ready, runs kubelet v1.36.3 on cgroup v1 and has its pod range', async () => {
    const n = JSON.parse(await node.kubectlOk(['get', 'node', '-o', 'json'])) as {
      items: {
        spec: { podCIDR?: string };
        status: {
          conditions: { type: string; status: string }[];
          nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string };
          addresses: { type: string; address: string }[];
        };
      }[];
    };
    expect(n.items).toHaveLength(1);
    const [only] = n.items;
    expect(only!.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(only!.status.nodeInfo.kubeletVersion).toBe('v1.36.3');
    expect(only!.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\/1\./);
    expect(only!.spec.podCIDR).toBe('10.214.0.0/24');
    expect(only!.status.addresses).toContainEqual({ type: 'InternalIP', address: NODE_IP });
  });

  it('runs a pod, and kubectl logs reaches it through the kubelet', async () => {
    const ns = 'node-smoke';
    await node.kubectlOk(['create', 'namespace', ns]);
    await waitFor('default ServiceAccount', async () =>
      (await node.kubectl(['-n', ns, 'get', 'sa', 'default'])).code === 0 ? true : undefined,
    );
    const pause = (
      await node.kubectlOk(['get', 'node', '-o', 'jsonpath={.items[0].status.images[*].names}'])
    ).match(/localhost\/socketfleet-pause:[0-9a-f]+/)?.[0];
    expect(pause).toBeDefined();
    const t0 = Date.now();
    await node.kubectlOk(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'sleeper' },
        spec: {
          containers: [{ name: 'pause', image: pause, imagePullPolicy: 'Never' }],
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65535,
            seccompProfile: { type: 'RuntimeDefault' },
          },
        },
      }),
    );
    await node.kubectlOk([
      '-n',
      ns,
      'wait',
      '--for=condition=Ready',
      'pod/sleeper',
      '--timeout=120s',
    ]);
    const readyMs = Date.now() - t0;
    const ip = await node.kubectlOk([
      '-n',
      ns,
      'get',
      'pod',
      'sleeper',
      '-o',
      'jsonpath={.status.podIP}',
    ]);
    expect(ip).toMatch(/^10\.214\.0\.\d+$/);
    console.log(`[node] pod create -> Ready in ${readyMs} ms, IP ${ip}`);
    // The API server reaches the kubelet at the node's InternalIP for logs.
    const logs = await node.kubectl(['-n', ns, 'logs', 'sleeper']);
    expect(logs.code).toBe(0);
    await node.kubectlOk(['delete', 'namespace', ns, '--wait=false']);
  });

  it('serves cluster DNS through the kube-dns Service and Service IPs through kube-proxy', async () => {
    expect(await resolveInNode('kubernetes.default.svc.cluster.local')).toEqual(['10.215.0.1']);
    expect(await resolveInNode('kube-dns.kube-system.svc.cluster.local')).toEqual(['10.215.0.10']);
    // The kubernetes Service (10.215.0.1:443) is DNATed to the API server on the node.
    const r = await node.inNetns('curl', [
      '-sf',
      '--cacert',
      `${node.dir}/pki/ca.crt`,
      'https://10.215.0.1/readyz',
    ]);
    expect(r.stdout).toBe('ok');
  });

  it('keeps every address inside its network namespace', async () => {
    const hostAddrs = execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' });
    const hostRoutes = execFileSync('ip', ['route'], { encoding: 'utf8' });
    for (const prefix of ['10.213.', '10.214.', '10.215.']) {
      expect(hostAddrs).not.toContain(prefix);
      expect(hostRoutes).not.toContain(prefix);
    }
    // Inside, the only way out is sfnode0, an ifb device: a dead end.
    const routes = await node.inNetns('ip', ['route', 'show', 'default']);
    expect(routes.stdout.trim()).toBe('default dev sfnode0 scope link');
    // No interface of the host is paired with one in the node's namespace.
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(node.name);
  });
});
