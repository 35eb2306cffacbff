import { killAllSupervised } from '../../operator/local/process.js';

/**
 * Runs a bench's main() as the whole process: exits with its code, or with 2 and the error's
 * message on one line (prefixed with the bench's name); every process it supervised is stopped
 * first either way.
 */
export function runMain(name: string, main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      killAllSupervised();
      process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`${name}: ${(err as Error).message}\n`);
      killAllSupervised();
      process.exit(2);
    },
  );
}
