import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: the nearest parent with socketfleet's package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'socketfleet')
          return dir;
      } catch {
        // keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(
        'Cannot find the socketfleet package root above ' + fileURLToPath(import.meta.url) + '.',
      );
    dir = parent;
  }
}

export function serverEntrypoint(): string {
  return join(packageRoot(), 'server-image', 'entrypoint.sh');
}
