// Pod readiness as the API server reports it, the moment it changes: a `kubectl get -w`
// stream instead of polling, so a measured "Ready -> first session" is not a poll interval long.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { RealNode } from '../harness.js';

export interface ReadyPod {
  name: string;
  ip: string;
  /** When the watch saw the pod Ready (ms since epoch). */
  at: number;
}

/**
 * Resolves with the first pod matching `selector` that is not in `known` and turns Ready.
 * Start it before the change that creates the pod.
 */
export function nextReadyPod(
  node: RealNode,
  ns: string,
  selector: string,
  known: ReadonlySet<string>,
  timeoutMs: number,
): { ready: Promise<ReadyPod>; cancel: () => void } {
  const child = spawn(
    join(node.binDir, 'kubectl'),
    [
      '--kubeconfig',
      node.kubeconfigPath,
      '-n',
      ns,
      'get',
      'pods',
      '-l',
      selector,
      '-w',
      '-o',
      'jsonpath={.metadata.name} {.status.podIP} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\\n"}',
    ],
    { env: node.env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const cancel = (): void => {
    child.kill('SIGTERM');
  };
  const ready = new Promise<ReadyPod>((resolve, reject) => {
    const timer = setTimeout(() => {
      cancel();
      reject(new Error(`no new pod ${selector} Ready within ${timeoutMs} ms`));
    }, timeoutMs);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [name, ip, status, deleting] = line.trim().split(' ');
      if (!name || known.has(name) || status !== 'True' || !ip || deleting) return;
      clearTimeout(timer);
      cancel();
      resolve({ name, ip, at: Date.now() });
    });
  });
  return { ready, cancel };
}
