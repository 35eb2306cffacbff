// Shared preparation of the e2e files: the generated CRD and a namespace ready for pods.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, type Cluster } from '../../cluster/harness.js';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export async function installCrd(cluster: Cluster): Promise<void> {
  await cluster.kubectlOk([
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    join(repo, 'crds'),
  ]);
  await cluster.kubectlOk([
    'wait',
    '--for=condition=Established',
    'crd/realtimeclusters.socketfleet.dev',
    '--timeout=60s',
  ]);
}

export async function createNamespace(cluster: Cluster, ns: string): Promise<void> {
  await cluster.kubectlOk(['create', 'namespace', ns]);
  // Pods cannot be created before the controller-manager adds the default ServiceAccount.
  await waitFor(
    `default serviceaccount in ${ns}`,
    async () => (await cluster.kubectl(['-n', ns, 'get', 'sa', 'default'])).code === 0,
  );
}

export function minimalCluster(name: string, spec: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'socketfleet.dev/v1alpha1',
    kind: 'RealtimeCluster',
    metadata: { name },
    spec,
  });
}
