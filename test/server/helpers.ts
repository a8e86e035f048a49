/**
 * Shared by the server tests: a real Sidecar built from YAML by the real
 * loader and a pino logger writing into an array. (The HTTP client is
 * test/helpers/http.ts.)
 */
import { parseConfig } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';

export interface CapturedLog {
  lines: string[];
  /** every line parsed as JSON */
  records(): Record<string, unknown>[];
  text(): string;
}

export function captureLog(): { log: CapturedLog; destination: { write(line: string): void } } {
  const lines: string[] = [];
  return {
    log: {
      lines,
      records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
      text: () => lines.join(''),
    },
    destination: { write: (line: string) => void lines.push(line) },
  };
}

/** A Sidecar from YAML (env substitution from `env` only), logging into an array. Call start(). */
export function sidecarFromYaml(yaml: string, env: Record<string, string> = {}): { sidecar: Sidecar; log: CapturedLog } {
  const config = parseConfig(yaml, 'test-sidecar.yaml', { env });
  const { log, destination } = captureLog();
  const logger = createLogger({ level: 'info', destination });
  return { sidecar: new Sidecar(config, logger), log };
}
