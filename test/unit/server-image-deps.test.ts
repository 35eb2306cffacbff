import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// server-image/Dockerfile installs server-image/package.json's dependencies from its own
// lockfile, so the image carries only the server's runtime packages. These checks keep that
// manifest complete and keep its versions the root lockfile's, which the tests run.

const ROOT = join(import.meta.dirname, '..', '..');
const readJson = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(ROOT, path), 'utf8')) as Record<string, unknown>;

interface Manifest {
  dependencies: Record<string, string>;
}
interface Lock {
  packages: Record<string, { version?: string; dev?: boolean }>;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** Package names the server's sources import or resolve (`node:` built-ins and relative paths aside). */
function importedPackages(): Set<string> {
  const names = new Set<string>();
  for (const file of sourceFiles(join(ROOT, 'server-image', 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from |import\(|\.resolve\()'([^'.][^']*)'/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      const parts = spec.split('/');
      names.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
    }
  }
  return names;
}

describe('server image dependencies', () => {
  const server = readJson('server-image/package.json') as unknown as Manifest;
  const root = readJson('package.json') as unknown as Manifest;

  it('lists every package the server imports, and nothing else', () => {
    expect(Object.keys(server.dependencies).sort()).toEqual([...importedPackages()].sort());
  });

  it('asks for the same ranges as the root manifest', () => {
    for (const [name, range] of Object.entries(server.dependencies))
      expect({ name, range }).toEqual({ name, range: root.dependencies[name] });
  });

  it('locks every package at the root lockfile version, with no Kubernetes client', () => {
    const serverLock = readJson('server-image/package-lock.json') as unknown as Lock;
    const rootLock = readJson('package-lock.json') as unknown as Lock;
    const locked = Object.entries(serverLock.packages).filter(([path]) => path !== '');
    expect(locked.length).toBeGreaterThan(Object.keys(server.dependencies).length);
    for (const [path, entry] of locked)
      expect({ path, version: entry.version }).toEqual({
        path,
        version: rootLock.packages[path]?.version,
      });
    expect(locked.map(([path]) => path).filter((p) => p.includes('@kubernetes'))).toEqual([]);
  });
});
