// vitest globalSetup of the `node` project: builds (or reuses) the node's binaries
// and the images, starts one contained real node for the whole project, imports the
// images, and tears the node down afterwards (also on SIGINT/SIGTERM).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { run } from '../cluster/harness.js';
import { buildNodeBinaries, importImages, repo, startNode } from './harness.js';

declare module 'vitest' {
  export interface ProvidedContext {
    socketfleetNodeRun: string;
    socketfleetImages: string[];
  }
}

/**
 * Builds the images (test/images/build.sh; its last stdout line is the images dir) and
 * returns the path of their images.tsv. SOCKETFLEET_IMAGES_TSV names an existing one instead.
 */
async function buildImages(): Promise<string | undefined> {
  if (process.env.SOCKETFLEET_IMAGES_TSV) return process.env.SOCKETFLEET_IMAGES_TSV;
  const script = join(repo, 'test', 'images', 'build.sh');
  if (!existsSync(script)) return undefined;
  const r = await run('bash', [script], { teeStderr: true });
  if (r.code !== 0) throw new Error(`test/images/build.sh failed (exit ${r.code})`);
  const dir = r.stdout.trim().split('\n').pop()!.trim();
  return join(dir, 'images.tsv');
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  await buildNodeBinaries();
  const tsv = await buildImages();
  const t1 = Date.now();
  const node = await startNode();
  const t2 = Date.now();
  const images = tsv ? await importImages(node, tsv) : [];
  const t3 = Date.now();
  console.log(
    `[node] binaries+images ${((t1 - t0) / 1000).toFixed(1)}s, node up ${((t2 - t1) / 1000).toFixed(1)}s, ` +
      `${images.length} images imported in ${((t3 - t2) / 1000).toFixed(1)}s`,
  );
  process.env.SOCKETFLEET_NODE_RUN = node.name;
  project.provide('socketfleetNodeRun', node.name);
  project.provide('socketfleetImages', images);
  return async () => {
    await node.stop();
  };
}
