/**
 * What each command of the CLI does (cli.ts parses the command line and loads
 * this module only for a command, so --help and --version start fast).
 */
// FIRST: enables the OpenTelemetry instrumentations (require hooks) before anything loads http, ioredis or pg
import { startTelemetry } from './telemetry/sdk';
import { configJsonSchema, loadConfigFile } from './probes/registry';
import type { SidecarConfig } from './config/types';
import { ConfigError, formatProblem } from './errors';
import { Sidecar } from './sidecar';
import { failureText } from './startup';
import { createLogger, logLevelFromEnv } from './telemetry/log';
import { runChecksOnce, formatCheckTable } from './check-once';
import { ConfigReloader } from './config/reload';
import { EXIT, type CommandLine } from './cli-args';
import type { RuntimeMonitors } from './monitors';
import { createBearerVerifier } from './server/api/jwt';

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function load(file: string): SidecarConfig {
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) fail(`${err.message}\n${file}: ${err.problems.length} problem(s); config not loaded`, EXIT.USAGE);
    throw err;
  }
}

/** LOG_LEVEL (any case) over the config's log.level; an invalid LOG_LEVEL is a usage error naming it */
function logLevel(config: SidecarConfig): string {
  try {
    return logLevelFromEnv(process.env) ?? config.log.level;
  } catch (err) {
    return fail((err as Error).message, EXIT.USAGE);
  }
}

/** Run a parsed command; `run` keeps the process alive, the others end it. */
export async function runCommand(line: Extract<CommandLine, { kind: 'command' }>): Promise<void> {
  const { command, values } = line;
  switch (command) {
    case 'run': {
      const probePort = values.probePort;
      const withFlags = (config: SidecarConfig) => (probePort === undefined ? config : withProbePort(config, probePort));
      return run(withFlags(load(values.config!)), withFlags);
    }
    case 'validate': {
      const config = load(values.config!);
      logLevel(config);
      const skipped = config.skipped.length ? `, ${config.skipped.length} skipped (${config.skipped.map((s) => s.name).join(', ')})` : '';
      const shard = config.shard ? `, shard ${config.shard.index} of ${config.shard.count} (owns ${config.shard.owned} of ${config.shard.total})` : '';
      const warnings = config.warnings.length ? `, ${config.warnings.length} warning(s)` : '';
      process.stdout.write(`${values.config}: ok: ${config.checks.length} check(s)${skipped}${shard}, port ${config.server.port}${warnings}\n`);
      for (const warning of config.warnings) process.stderr.write(`warning: ${formatProblem(config.source, warning)}\n`);
      return;
    }
    case 'check': {
      const config = load(values.config!);
      const results = await runChecksOnce(config, values.check).catch((err: Error) => fail(err.message, EXIT.USAGE));
      if (!values.check?.length) for (const s of config.skipped) process.stderr.write(`check ${s.name} skipped: ${s.reason}\n`);
      process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : formatCheckTable(results));
      process.exit(results.every((r) => r.ok || !r.critical) ? EXIT.OK : EXIT.FAILED);
    }
    // eslint-disable-next-line no-fallthrough
    case 'schema':
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
  }
}

/**
 * `run --probe-port PORT`: server.probeListener on PORT, over what the file
 * says (its `thread` is kept; true when the file has none). Applied to every
 * load, reloads included, so a reload never sees the listener change.
 */
function withProbePort(config: SidecarConfig, port: number): SidecarConfig {
  return { ...config, server: { ...config.server, probeListener: { port, thread: config.server.probeListener?.thread ?? true } } };
}

/** `flags`: what the command line sets over every config loaded (the first and each reload) */
async function run(config: SidecarConfig, flags: (config: SidecarConfig) => SidecarConfig = (c) => c): Promise<void> {
  const logger = createLogger({ level: logLevel(config) });
  logger.info({ config: config.source }, 'config loaded');
  for (const warning of config.warnings) {
    logger.warn({ config: config.source, setting: warning.path, line: warning.line, column: warning.column }, `config warning: ${formatProblem(config.source, warning)}`);
  }
  const telemetry = startTelemetry(config, logger);
  const sidecar = new Sidecar(config, logger, telemetry.hooks);
  // monitors managed over /api/v1, kept in PostgreSQL (store.postgres; docs/api.md)
  // loaded only then: the monitors API, its OpenAPI document (zod-openapi) and the store are not needed to answer probes
  const monitors: RuntimeMonitors | undefined = config.store
    ? new (require('./monitors') as typeof import('./monitors')).RuntimeMonitors(sidecar, config, logger, createBearerVerifier(() => sidecar.config.server.auth.jwt)) // eslint-disable-line @typescript-eslint/no-require-imports
    : undefined;
  try {
    await sidecar.start();
    await monitors?.start();
  } catch (err) {
    const reason = failureText(err);
    logger.fatal({ err }, `could not start: ${reason}`);
    logger.flush();
    process.stderr.write(`health-sidecar: could not start: ${sidecar.redactor.text(reason)}\n`);
    await telemetry.shutdown(1000);
    process.exit(EXIT.FAILED);
  }
  // hot reload: SIGHUP and changes of the file (config/reload.ts)
  const reloadMetrics = telemetry.reloadMetrics();
  const reloader = new ConfigReloader({ file: config.source, target: monitors?.reloadTarget ?? sidecar, logger, load: (file) => flags(loadConfigFile(file)), ...(reloadMetrics ? { metrics: reloadMetrics } : {}) }).start();
  let signals = 0;
  const stop = (signal: string) => {
    reloader.stop();
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(EXIT.FAILED);
    }
    logger.info({ signal }, `${signal} received`);
    void sidecar
      .shutdown()
      .then(() => monitors?.close())
      .then(() => telemetry.shutdown()) // flush pending spans, bounded (telemetry/sdk.ts)
      .then(() => {
        logger.flush();
        process.exit(EXIT.OK);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
