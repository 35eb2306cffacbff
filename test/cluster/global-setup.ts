// vitest globalSetup for projects that need the test control plane.
// Starts the cluster once per run (or attaches to SOCKETFLEET_KUBECONFIG when
// it is already set, e.g. after `test/cluster/up.sh`), exposes it to tests as
// inject('socketfleetKubeconfig') and the SOCKETFLEET_KUBECONFIG /
// SOCKETFLEET_AUDIT_LOG env vars, and tears it down after the run.
import type { TestProject } from 'vitest/node';
import { startCluster } from './harness.js';

declare module 'vitest' {
  export interface ProvidedContext {
    socketfleetKubeconfig: string;
    socketfleetAuditLog: string;
    socketfleetBinDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startCluster();
  process.env.SOCKETFLEET_KUBECONFIG = cluster.kubeconfigPath;
  process.env.SOCKETFLEET_AUDIT_LOG = cluster.auditLogPath;
  process.env.SOCKETFLEET_BIN_DIR = cluster.binDir;
  project.provide('socketfleetKubeconfig', cluster.kubeconfigPath);
  project.provide('socketfleetAuditLog', cluster.auditLogPath);
  project.provide('socketfleetBinDir', cluster.binDir);
  return async () => {
    await cluster.stop();
  };
}
