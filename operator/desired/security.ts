/**
 * Container hardening shared by every workload. Each image's own non-root user is used so the
 * files it ships stay readable: the server image runs as 10001, redis:7 as 999 (redis), and the
 * official nginx image as 101 (nginx).
 */
export const SERVER_UID = 10001;
export const REDIS_UID = 999;
export const NGINX_UID = 101;

export function restrictedContainerSecurity(uid: number): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
}

export function podSecurity(fsGroup?: number): Record<string, unknown> {
  const ctx: Record<string, unknown> = { seccompProfile: { type: 'RuntimeDefault' } };
  if (fsGroup !== undefined) ctx.fsGroup = fsGroup;
  return ctx;
}

/** Pull policy only when the user set one, so the cluster default (by tag) applies otherwise. */
export function pullPolicy(policy: string | undefined): Record<string, string> {
  return policy ? { imagePullPolicy: policy } : {};
}
