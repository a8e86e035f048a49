/** Error classes with stable codes (undici style): callers switch on `code`, never on message text. */

export interface ConfigProblem {
  line: number;
  column: number;
  /** dotted path to the key, e.g. checks[1].url; empty for file-level problems */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  const where = problem.line > 0 ? `${file}:${problem.line}:${problem.column}` : file;
  return problem.path ? `${where} ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** A probe failed for a reason worth a specific message (auth failed, bad status…). */
export class ProbeFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProbeFailure';
  }
}
