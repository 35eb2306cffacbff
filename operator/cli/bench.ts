import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_USAGE, parseBenchArgs } from '../bench/options.js';
import { renderReportHtml } from '../bench/report-html.js';
import { formatSummary } from '../bench/result.js';
import { runBench } from '../bench/run.js';

/** `socketfleet bench`: exit 0 when the run passes its gates, 1 when it fails them, 2 on bad usage. */
export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const parsed = parseBenchArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`socketfleet bench: ${parsed.error}\n`);
    return 2;
  }
  const options = parsed.options;
  const progress = (line: string): void => {
    if (!options.quiet) process.stderr.write(`${line}\n`);
  };
  let result;
  try {
    result = await runBench(options, progress);
  } catch (err) {
    process.stderr.write(`socketfleet bench: ${(err as Error).message}\n`);
    return 1;
  }
  if (options.out !== undefined) {
    mkdirSync(options.out, { recursive: true });
    writeFileSync(join(options.out, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(options.out, 'report.html'), renderReportHtml(result));
    progress(`wrote ${join(options.out, 'result.json')} and ${join(options.out, 'report.html')}`);
  }
  process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${formatSummary(result)}\n`);
  return result.pass ? 0 : 1;
}
