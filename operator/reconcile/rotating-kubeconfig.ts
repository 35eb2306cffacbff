import { readFileSync, statSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';

/** Where an in-cluster pod finds its projected ServiceAccount token. */
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * A KubeConfig whose bearer token comes from a file that is read again whenever it changes.
 * Bound ServiceAccount tokens expire (an hour by default) and the kubelet rewrites the projected
 * file before they do; client-node re-reads it only every 60 s in-cluster and never for a
 * kubeconfig's tokenFile. Every request (ours and the informers' watches) goes through
 * applyToHTTPSOptions, so the header is always the file's current token. The CA needs nothing
 * here: client-node reads certificate-authority files on every call, and KubeClient swaps its
 * connection pool when the bytes change.
 */
export class RotatingKubeConfig extends KubeConfig {
  private tokenFile: string | undefined;
  private token: string | undefined;
  private stamp = '';

  /** Reads the bearer token from `path` from now on (undefined: the kubeconfig's own auth). */
  useTokenFile(path: string | undefined): void {
    this.tokenFile = path;
    this.stamp = '';
  }

  override async applyToHTTPSOptions(
    opts: Parameters<KubeConfig['applyToHTTPSOptions']>[0],
  ): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    const token = this.currentToken();
    if (token === undefined) return;
    opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
  }

  private currentToken(): string | undefined {
    if (!this.tokenFile) return undefined;
    try {
      // A projected volume swaps a symlink: size, mtime or inode change with every rotation.
      const st = statSync(this.tokenFile);
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (stamp !== this.stamp) {
        this.token = readFileSync(this.tokenFile, 'utf8').trim();
        this.stamp = stamp;
      }
    } catch {
      // Mid-rotation or gone: keep the last token; the API server will say if it is stale.
    }
    return this.token;
  }
}

/** The tokenFile (kubectl's key) of the current context's user in a kubeconfig file, if any. */
export function kubeconfigTokenFile(kubeconfigPath: string, kc: KubeConfig): string | undefined {
  try {
    const doc = parse(readFileSync(kubeconfigPath, 'utf8')) as {
      users?: { name: string; user?: { tokenFile?: string; 'token-file'?: string } }[];
    };
    const name = kc.getCurrentUser()?.name;
    const user = doc.users?.find((u) => u.name === name)?.user;
    const file = user?.tokenFile ?? user?.['token-file'];
    if (!file) return undefined;
    return file.startsWith('/') ? file : `${kubeconfigPath.replace(/[^/]*$/, '')}${file}`;
  } catch {
    return undefined;
  }
}
