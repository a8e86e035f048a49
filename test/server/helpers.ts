/**
 * Shared by the server tests: a real Sidecar built from YAML by the real
 * loader, a pino logger writing into an array, and a tiny HTTP client that
 * returns status, headers and the whole body.
 */
import http from 'node:http';
import { parseConfig } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

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
