#!/usr/bin/env node
/**
 * health-sidecar run | validate | check | schema | help, --help, --version.
 * The command line, its help and the exit codes: cli-args.ts; what each
 * command does: commands.ts, loaded only for a command (it loads the
 * OpenTelemetry SDK and the drivers), so --help and --version answer fast.
 */
import { BIN, EXIT, UsageError, parseCommandLine, type CommandLine } from './cli-args';

async function main(argv: string[]): Promise<void> {
  let line: CommandLine;
  try {
    line = parseCommandLine(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(err.text);
      process.exit(EXIT.USAGE);
    }
    throw err;
  }
  if (line.kind !== 'command') {
    process.stdout.write(line.text);
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runCommand } = require('./commands') as typeof import('./commands');
  await runCommand(line);
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${BIN}: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(EXIT.FAILED);
});
