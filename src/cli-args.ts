/**
 * The command line: commands, their options (node's util.parseArgs, strict),
 * their help, and the exit codes. Pure: cli.ts does the work and the exiting.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LOG_LEVELS } from './config/schema';
import { VERSION } from './version';

export const BIN = 'health-sidecar';

/**
 * Exit codes (also in docs/deploy.md, "Exit codes"; test/cli/help.test.ts keeps
 * the two equal). 1 means "the job failed" for each command (run: could not
 * start; check: a critical check failed), 2 "what you gave me is wrong".
 */
export const EXIT = {
  OK: 0,
  /** run: could not start, or a second signal cut the drain short; check: a critical check failed */
  FAILED: 1,
  /** bad usage, an invalid config or LOG_LEVEL: nothing was started */
  USAGE: 2,
} as const;

export const EXIT_CODES: readonly [number, string][] = [
  [EXIT.OK, 'success (run: stopped by SIGTERM/SIGINT after draining)'],
  [EXIT.FAILED, 'run: could not start (e.g. its port is in use; the reason on stderr), or a second signal ended the drain early; check: a critical check failed'],
  [EXIT.USAGE, 'usage error (unknown command or option, missing --config, unknown --check), invalid config or invalid LOG_LEVEL: nothing was started'],
];

type ParseArgsOption = NonNullable<ParseArgsConfig['options']>[string];

type OptionSpec = ParseArgsOption & {
  /** the value's placeholder in help (string options) */
  arg?: string;
  help: string;
};

export interface CommandSpec {
  summary: string;
  usage: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** the exit codes this command can end with, and what each means for it */
  exits: [number, string][];
  examples: string[];
}

const CONFIG: OptionSpec = { type: 'string', short: 'c', arg: 'FILE', help: 'the config file, required (YAML; docs/configuration.md)' };
const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' };

export const COMMANDS = {
  run: {
    summary: 'start the sidecar: probe the checks, answer the kubelet probes, serve /health and /metrics',
    usage: `${BIN} run --config FILE [--probe-port PORT]`,
    description: [
      'Loads FILE (config warnings are logged), probes every check on its interval and serves, on',
      'server.port (default 9464): /livez /readyz /startupz from memory, /health, /metrics and the',
      'status page. SIGHUP or a change of FILE reloads it (an invalid new config is refused, the old',
      'one stays). SIGTERM/SIGINT: /readyz answers 503 at once; the process exits 0 after',
      'server.drainDelay. LOG_LEVEL=debug logs one line per probe run (check, outcome, duration,',
      'attempts). --probe-port PORT also serves the kubelet paths on PORT from a thread of their own',
      '(server.probeListener, over what FILE says), so a flood of server.port cannot delay them; the',
      'deploy kit sets it and points the Kubernetes probes there.',
    ].join('\n'),
    options: {
      config: CONFIG,
      'probe-port': { type: 'string', arg: 'PORT', help: 'serve the kubelet paths on PORT too, from their own thread (sets server.probeListener; 1-65535)' },
      help: HELP,
    },
    exits: [
      [EXIT.OK, 'stopped by SIGTERM/SIGINT after draining'],
      [EXIT.FAILED, 'could not start (e.g. the port is in use; the reason on stderr), or a second signal ended the drain early'],
      [EXIT.USAGE, 'bad usage, invalid config or invalid LOG_LEVEL: never listened'],
    ],
    examples: ['LOG_LEVEL=debug health-sidecar run --config config/sidecar.yaml'],
  },
  validate: {
    summary: 'check a config file without starting anything',
    usage: `${BIN} validate --config FILE`,
    description: [
      'Loads FILE as run would. Valid: one summary line on stdout, then any warnings on stderr',
      '("warning: FILE:LINE:COL key: what"), exit 0. Invalid: every problem on stderr as',
      '"FILE:LINE:COL key: problem", exit 2.',
    ].join('\n'),
    options: { config: CONFIG, help: HELP },
    exits: [
      [EXIT.OK, 'the config is valid (warnings do not change that)'],
      [EXIT.USAGE, 'bad usage, invalid config or invalid LOG_LEVEL'],
    ],
    examples: ['health-sidecar validate --config config/examples/web-app.yaml'],
  },
  check: {
    summary: 'run every check once and print the results (for a CI step or a shell)',
    usage: `${BIN} check --config FILE [--json] [--check NAME]...`,
    description: [
      'Runs each check of FILE once, through the same timeout, retry and breaker as run, and prints',
      'a table (or JSON). Checks skipped for an unset variable are named on stderr.',
    ].join('\n'),
    options: {
      config: CONFIG,
      json: { type: 'boolean', help: 'print JSON instead of the table' },
      check: { type: 'string', multiple: true, arg: 'NAME', help: 'run only this check (repeatable)' },
      help: HELP,
    },
    exits: [
      [EXIT.OK, 'every critical check passed (a non-critical failure is printed, not counted)'],
      [EXIT.FAILED, 'a critical check failed'],
      [EXIT.USAGE, 'bad usage, invalid config, or a --check that names no check (or a skipped one)'],
    ],
    examples: ['health-sidecar check --config config/examples/minimal.yaml --json'],
  },
  schema: {
    summary: "print the config file's JSON Schema (for editors and CI)",
    usage: `${BIN} schema`,
    description: 'Prints the JSON Schema generated from the schema the config loader itself uses.',
    options: { help: HELP },
    exits: [
      [EXIT.OK, 'the schema was printed'],
      [EXIT.USAGE, 'bad usage'],
    ],
    examples: ['health-sidecar schema > sidecar.schema.json'],
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export type CommandLine =
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string }
  | { kind: 'command'; command: CommandName; values: { config?: string; json?: boolean; check?: string[]; probePort?: number } };

/** A mistake on the command line: exit 2 with the message and where to read more. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandName,
  ) {
    super(message);
    this.name = 'UsageError';
  }

  /** the text for stderr */
  get text(): string {
    const usage = this.command ? `usage: ${COMMANDS[this.command].usage}` : `usage: ${BIN} <command> [options]  (commands: ${Object.keys(COMMANDS).join(', ')})`;
    const more = this.command ? `${BIN} ${this.command} --help` : `${BIN} --help`;
    return `${BIN}${this.command ? ` ${this.command}` : ''}: ${this.message}\n${usage}\nRun "${more}" for the options and an example.\n`;
  }
}

const isCommand = (name: string | undefined): name is CommandName => name !== undefined && Object.hasOwn(COMMANDS, name);

export function parseCommandLine(argv: readonly string[]): CommandLine {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith('-')) {
    const { values } = strictParse(argv, { help: HELP, version: { type: 'boolean', short: 'V', help: '' } });
    if (values.version) return { kind: 'version', text: `${VERSION}\n` };
    if (values.help || first === undefined) return { kind: 'help', text: mainHelp() };
    throw new UsageError('nothing to do'); // unreachable: strict parsing allows only --help and --version
  }
  if (first === 'help') {
    const [topic, ...extra] = rest;
    if (extra.length) throw new UsageError(`help takes one command name, not ${extra.length + 1}`);
    if (topic === undefined) return { kind: 'help', text: mainHelp() };
    if (!isCommand(topic)) throw new UsageError(`unknown command "${topic}"`);
    return { kind: 'help', text: commandHelp(topic) };
  }
  if (!isCommand(first)) throw new UsageError(`unknown command "${first}"`);
  const spec: CommandSpec = COMMANDS[first];
  const { values } = strictParse(rest, spec.options, first);
  if (values.help) return { kind: 'help', text: commandHelp(first) };
  if ('config' in spec.options && values.config === undefined) throw new UsageError('--config FILE is required', first);
  const { 'probe-port': probePort, ...rest_ } = values as { config?: string; json?: boolean; check?: string[]; 'probe-port'?: string };
  return { kind: 'command', command: first, values: { ...rest_, ...(probePort === undefined ? {} : { probePort: portNumber(probePort, first) }) } };
}

/** A TCP port of --probe-port: a whole number 1-65535, written as one */
function portNumber(text: string, command: CommandName): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new UsageError(`--probe-port must be a port number 1-65535 (got "${text.slice(0, 20)}")`, command);
  return port;
}

function strictParse(args: readonly string[], options: Record<string, OptionSpec>, command?: CommandName) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    // node's messages ("Unknown option '--port'. To specify a positional argument starting
    // with a '-', place it at the end of the command after '--', as in '-- \"--port\"") are long
    const code = (err as { code?: string }).code;
    const message = (err as Error).message;
    const token = /'([^']*)'/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && token) throw new UsageError(`unknown option ${token}`, command);
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && token) throw new UsageError(`unexpected argument "${token}"${'config' in options ? ' (the config file goes after --config)' : ''}`, command);
    if (/argument missing/.test(message) && token) throw new UsageError(`option ${token.replace(/ <value>$/, '')} needs a value`, command);
    if (/does not take an argument/.test(message) && token) throw new UsageError(`option ${token} takes no value`, command);
    throw new UsageError(message.split('. ')[0]!.replace(/\.$/, ''), command);
  }
}

const pad = (text: string, width: number) => text + ' '.repeat(Math.max(1, width - text.length));

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`, o.help] as const);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 3;
  return rows.map(([flag, help]) => `  ${pad(flag, width)}${help}`);
}

function exitLines(codes: readonly (readonly [number, string])[]): string[] {
  return codes.map(([code, meaning]) => `  ${code}  ${meaning}`);
}

const LOG_LEVEL_HELP = `  LOG_LEVEL   ${LOG_LEVELS.join(', ')} (any case); overrides log.level. debug: one line per probe run`;
const OTEL_HELP = '  OTEL_*      the standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT sends traces to a Collector, OTEL_METRICS_EXPORTER=otlp and OTEL_LOGS_EXPORTER=otlp metrics and logs too (docs/telemetry.md)';

export function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  return [
    `${BIN} ${name} — ${spec.summary}`,
    '',
    `usage: ${spec.usage}`,
    '',
    spec.description,
    '',
    'options:',
    ...optionLines(spec.options),
    ...('config' in spec.options
      ? ['', 'environment:', ...(name === 'check' ? [] : [LOG_LEVEL_HELP]), ...(name === 'run' ? [OTEL_HELP] : []), '  ${VAR}      any variable the config refers to (docs/configuration.md, "Substitution")']
      : []),
    '',
    'exit codes:',
    ...exitLines(spec.exits),
    '',
    spec.examples.length > 1 ? 'examples:' : 'example:',
    ...spec.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 3;
  return [
    `${BIN} ${VERSION} — Kubernetes health-check sidecar: probes your app and its dependencies, answers`,
    'the kubelet probes (/livez /readyz /startupz) from memory, exports OpenTelemetry metrics, traces and logs.',
    '',
    `usage: ${BIN} <command> [options]`,
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, spec]) => `  ${pad(name, width)}${spec.summary}`),
    `  ${pad('help', width)}the help of a command, as "${BIN} <command> --help" shows it`,
    '',
    'options:',
    '  -h, --help      this help; after a command, that command\'s help',
    '  -V, --version   print the version',
    '',
    'environment:',
    LOG_LEVEL_HELP,
    OTEL_HELP,
    '',
    'exit codes:',
    ...exitLines(EXIT_CODES),
    '',
    'example:',
    `  ${BIN} validate --config config/sidecar.yaml && ${BIN} run --config config/sidecar.yaml`,
    '',
    'docs: docs/quickstart.md (first steps), docs/configuration.md, docs/deploy.md',
    '',
  ].join('\n');
}
