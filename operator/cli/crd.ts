import { crdYaml } from './generated.js';

export async function run(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    process.stderr.write(`crd: unexpected argument ${argv[0]}; usage: socketfleet crd\n`);
    return Promise.resolve(2);
  }
  process.stdout.write(crdYaml());
  return Promise.resolve(0);
}
