import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderText } from '../../operator/cli/render.js';

/**
 * `socketfleet render` output for each case, compared with the committed expectation.
 * Regenerate on purpose only: UPDATE_GOLDEN=1 npx vitest run --project unit test/golden
 */
const HERE = import.meta.dirname;
const REPO = join(HERE, '..', '..');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
// CI compares; it never rewrites what it compares against, or every change would pass.
if (UPDATE && process.env.CI)
  throw new Error(
    'UPDATE_GOLDEN=1 is refused when CI is set: regenerate goldens on purpose on a developer machine and commit the diff.',
  );
/** Cases that mirror an example must stay byte-identical to it, so the README's examples are tested. */
const EXAMPLE_FILES: Record<string, string> = {
  minimal: 'examples/minimal.yaml',
  full: 'examples/full.yaml',
  local: 'examples/local.yaml',
  'room-affinity': 'examples/room-affinity.yaml',
  'secure-gateway': 'examples/secure-gateway.yaml',
  'app-chat': 'examples/apps/chat/realtimecluster.yaml',
};
const FROM_EXAMPLES = Object.keys(EXAMPLE_FILES);

const cases = readdirSync(HERE, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('golden render output', () => {
  it('has a case for every example', () => {
    for (const name of FROM_EXAMPLES) expect(cases).toContain(name);
  });

  it.each(cases)('%s', (name) => {
    const clusterPath = join(HERE, name, 'cluster.yaml');
    const expectedPath = join(HERE, name, 'expected.yaml');
    if (FROM_EXAMPLES.includes(name)) {
      const example = join(REPO, EXAMPLE_FILES[name]!);
      if (UPDATE) writeFileSync(clusterPath, readFileSync(example, 'utf8'));
      expect(readFileSync(clusterPath, 'utf8'), `${name}/cluster.yaml = ${EXAMPLE_FILES[name]}`).toBe(
        readFileSync(example, 'utf8'),
      );
    }
    const out = renderText(readFileSync(clusterPath, 'utf8'));
    expect(out.problems).toEqual([]);
    if (UPDATE || !existsSync(expectedPath)) {
      if (!UPDATE) throw new Error(`${name}/expected.yaml is missing; run with UPDATE_GOLDEN=1`);
      writeFileSync(expectedPath, out.yaml!);
    }
    expect(out.yaml).toBe(readFileSync(expectedPath, 'utf8'));
  });
});
