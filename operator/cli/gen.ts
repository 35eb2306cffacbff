import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generatedFiles, repoRoot } from './generated.js';

export const GEN_USAGE = 'usage: socketfleet gen [--check]';

/** Writes the CRD (and its chart copy) and the field reference; --check only compares, for CI. */
export async function run(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`gen: unknown argument ${unknown[0]}; ${GEN_USAGE}\n`);
    return 2;
  }
  const root = repoRoot();
  const stale: string[] = [];
  for (const [rel, content] of Object.entries(generatedFiles())) {
    const abs = join(root, rel);
    const current = existsSync(abs) ? readFileSync(abs, 'utf8') : undefined;
    if (current === content) continue;
    if (check) {
      stale.push(rel);
    } else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
      process.stdout.write(`gen: wrote ${rel}\n`);
    }
  }
  if (stale.length > 0) {
    for (const rel of stale) {
      process.stderr.write(`gen --check: ${rel} is out of date; run npm run gen and commit it\n`);
    }
    return 1;
  }
  if (check) process.stdout.write('gen --check: generated files are up to date\n');
  return Promise.resolve(0);
}
