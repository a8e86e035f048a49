/**
 * Helpers for the admin/auth/rate-limit/security tests: a real Sidecar built
 * from YAML text (the real loader, env substitution and all) on port 0, with
 * its log lines captured through the real logger (so log redaction is the
 * product's), and a small HTTP client that returns whole responses.
 */
import http from 'node:http';
import net from 'node:net';
import { parseConfig } from '../../src/probes/registry';
import { Sidecar, type SidecarHooks } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { request } from '../helpers/http';

export interface RunningSidecar {
  sidecar: Sidecar;
  port: number;
  /** every log line written so far (raw JSON text) */
  logs: string[];
  stop(): Promise<void>;
}

export async function startSidecar(yaml: string, options: { env?: NodeJS.ProcessEnv; hooks?: SidecarHooks; level?: string } = {}): Promise<RunningSidecar> {
  const config = parseConfig(yaml, 'test.yaml', { env: options.env ?? {} });
  const logs: string[] = [];
  // LOG_LEVEL in the environment would override the level; these tests read every line
  const previous = process.env.LOG_LEVEL;
  delete process.env.LOG_LEVEL;
  const logger = createLogger({ level: options.level ?? 'debug', destination: { write: (line: string) => void logs.push(line) } });
  if (previous !== undefined) process.env.LOG_LEVEL = previous;
  const sidecar = new Sidecar(config, logger, options.hooks);
  const port = await sidecar.start();
  return { sidecar, port, logs, stop: () => sidecar.shutdown({ drain: false }) };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): any;
}

/** The shared client (test/helpers/http.ts) with the argument order and reply shape of the security tests. */
export async function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Reply> {
  const reply = await request(port, path, { method, headers, body });
  return { status: reply.status, headers: reply.headers, text: reply.body, json: reply.json };
}

/** Send raw bytes; resolve with everything the server sent until it closed (or `idleMs` of silence). */
export function rawExchange(port: number, payload: string | Buffer, idleMs = 2000): Promise<string> {
  return new Promise<string>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      socket.write(payload);
      arm();
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
      arm();
    });
    socket.on('error', () => undefined);
    socket.on('close', finish);
  });
}

/** status code of a raw HTTP/1.x reply, or 0 when the server closed without answering */
export function rawStatus(reply: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
  return m ? Number(m[1]) : 0;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
export const apiKey = (key: string) => ({ 'x-api-key': key });
