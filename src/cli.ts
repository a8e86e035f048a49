#!/usr/bin/env node
/**
 * health-sidecar run | validate | check | schema
 * Exit codes: 0 ok, 1 a critical check failed (check), 2 bad config or usage.
 */
// FIRST: enables the OpenTelemetry instrumentations (require hooks) before anything loads http, ioredis or pg
import { startTelemetry } from './telemetry/sdk';
import { parseArgs } from 'node:util';
import { configJsonSchema, loadConfigFile } from './probes/registry';
import type { SidecarConfig } from './config/types';
import { ConfigError } from './errors';
import { Sidecar } from './sidecar';
import { failureText } from './startup';
import { createLogger } from './telemetry/log';
import { runChecksOnce, formatCheckTable } from './check-once';
import { ConfigReloader } from './config/reload';

const USAGE = `usage:
  health-sidecar run --config FILE
  health-sidecar validate --config FILE
  health-sidecar check --config FILE [--json] [--check NAME]
  health-sidecar schema`;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function load(file: string | undefined): SidecarConfig {
  if (!file) fail(`--config FILE is required\n${USAGE}`);
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) fail(`${err.message}\n${file}: ${err.problems.length} problem(s); config not loaded`);
    throw err;
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  let values: { config?: string; json?: boolean; check?: string[]; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, check: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  switch (command) {
    case 'run':
      return run(load(values.config));
    case 'validate': {
      const config = load(values.config);
      const skipped = config.skipped.length ? `, ${config.skipped.length} skipped (${config.skipped.map((s) => s.name).join(', ')})` : '';
      const shard = config.shard ? `, shard ${config.shard.index} of ${config.shard.count} (owns ${config.shard.owned} of ${config.shard.total})` : '';
      process.stdout.write(`${values.config}: ok: ${config.checks.length} check(s)${skipped}${shard}, port ${config.server.port}\n`);
      return;
    }
    case 'check': {
      const config = load(values.config);
      const results = await runChecksOnce(config, values.check).catch((err: Error) => fail(err.message));
      if (!values.check?.length) for (const s of config.skipped) process.stderr.write(`check ${s.name} skipped: ${s.reason}\n`);
      process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : formatCheckTable(results));
      process.exit(results.every((r) => r.ok || !r.critical) ? 0 : 1);
    }
    // eslint-disable-next-line no-fallthrough
    case 'schema':
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command "${command}"\n${USAGE}`);
  }
}

async function run(config: SidecarConfig): Promise<void> {
  const logger = createLogger({ level: config.log.level });
  logger.info({ config: config.source }, 'config loaded');
  const telemetry = startTelemetry(config, logger);
  const sidecar = new Sidecar(config, logger, telemetry.hooks);
  try {
    await sidecar.start();
  } catch (err) {
    const reason = failureText(err);
    logger.fatal({ err }, `could not start: ${reason}`);
    logger.flush();
    process.stderr.write(`health-sidecar: could not start: ${sidecar.redactor.text(reason)}\n`);
    await telemetry.shutdown(1000);
    process.exit(1);
  }
  // hot reload: SIGHUP and changes of the file (config/reload.ts)
  const reloader = new ConfigReloader({ file: config.source, target: sidecar, logger, load: (file) => loadConfigFile(file) }).start();
  let signals = 0;
  const stop = (signal: string) => {
    reloader.stop();
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(1);
    }
    logger.info({ signal }, `${signal} received`);
    void sidecar
      .shutdown()
      .then(() => telemetry.shutdown()) // flush pending spans, bounded (telemetry/sdk.ts)
      .then(() => {
        logger.flush();
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`health-sidecar: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
