import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number> }>;
}

/** Add a subcommand with one line here; modules load lazily so `render` never pulls in a client. */
const COMMANDS: Record<string, Command> = {
  operator: {
    summary: 'run the operator (watches RealtimeClusters)',
    load: () => import('./operator.js'),
  },
  render: {
    summary: 'print every object of a RealtimeCluster file as YAML',
    load: () => import('./render.js'),
  },
  crd: {
    summary: 'print the RealtimeCluster CustomResourceDefinition',
    load: () => import('./crd.js'),
  },
  gen: {
    summary: 'regenerate the CRD files and field reference (--check: verify)',
    load: () => import('./gen.js'),
  },
  up: { summary: 'run a RealtimeCluster locally', load: () => import('./up.js') },
  bench: { summary: 'benchmark a running cluster', load: () => import('./bench.js') },
  'gateway-sync': {
    summary: "the gateway pod's sidecar: follow the server endpoints, reload nginx",
    load: () => import('./gateway-sync.js'),
  },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(
    ([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`,
  );
  return ['usage: socketfleet <command> [options]', '', 'commands:', ...lines, ''].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(
      `socketfleet: unknown command "${name}"; run socketfleet --help to list commands\n`,
    );
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}

function isEntry(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === import.meta.url;
  } catch {
    return false;
  }
}

// `tsx operator/cli/main.ts ...` (npm run gen) runs this file directly; bin/socketfleet.js imports it.
if (isEntry()) {
  process.exitCode = await main(process.argv.slice(2));
}
