/**
 * A monitor is exactly a check as in the config file: it is validated by the
 * same loader (same schema, same messages, same `${…}` substitution and
 * secrets handling), with the file's `defaults` and `shard` blocks, as if it
 * were one more entry of the file's `checks`. What is stored is the body as
 * written, so a `${VAR}` reference stays a reference and its value is read
 * from the environment of each replica when the monitor is applied.
 */
import { readFileSync } from 'node:fs';
import { parseYaml, toPlainData, unmask } from '../config/document';
import { ConfigError } from '../errors';
import type { CheckConfig, SidecarConfig } from '../config/types';

export type ParseConfig = (text: string, source: string, options?: { env?: NodeJS.ProcessEnv }) => SidecarConfig;

export interface MonitorProblem {
  /** where in the monitor body, e.g. `url` or `retry.attempts` (`(root)` for the body itself) */
  path: string;
  message: string;
}

/** The blocks of the config file a monitor is read with (as written: references kept). */
export interface FileContext {
  defaults?: unknown;
  shard?: unknown;
}

const unmaskAll = (value: unknown): unknown =>
  typeof value === 'string' ? unmask(value)
  : Array.isArray(value) ? value.map(unmaskAll)
  : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [unmask(k), unmaskAll(v)]))
  : value;

/**
 * The config file as written: references kept, read the way the loader reads
 * it (a `${…}` inside a flow mapping is a reference, not YAML syntax).
 * Undefined when it does not parse (the loader has said why).
 */
export function readFileData(source: string): Record<string, unknown> | undefined {
  try {
    const parsed = parseYaml(readFileSync(source, 'utf8'));
    if (parsed.problems.length) return undefined;
    const plain = toPlainData(parsed);
    return 'problem' in plain ? undefined : (unmaskAll(plain.data) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}

/** The file's `defaults` and `shard` as written (the file was already validated by the loader). */
export function fileContext(source: string): FileContext {
  const data = readFileData(source);
  return { ...(data?.defaults !== undefined ? { defaults: data.defaults } : {}), ...(data?.shard !== undefined ? { shard: data.shard } : {}) };
}

const PREFIX = /^checks\[0\](\.|(?=\[)|$)/;

/** `checks[0].url` → `url` */
const monitorPath = (path: string) => path.replace(PREFIX, '') || '(root)';

/** `${…}` anywhere in the text: a reference, not a literal */
const REFERENCE = /\$\{[^}]+\}/;

/**
 * Every string in the body that is a URL with a literal password (one not
 * given as a `${VAR}` reference): refused, since the store would keep it.
 */
export function literalPasswords(value: unknown, path: string[] = []): MonitorProblem[] {
  if (typeof value === 'string') {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@]*:([^/?#@]*)@/i.exec(value);
    if (m && m[1] !== '' && !REFERENCE.test(m[1]!)) {
      return [{ path: path.join('.') || '(root)', message: 'has a literal password in its URL; write it as a ${VAR} reference (the store keeps the reference, never the value)' }];
    }
    return [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => literalPasswords(v, [...path, String(i)]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => literalPasswords(v, [...path, k]));
  return [];
}

export type ParsedMonitor = { config: SidecarConfig } | { problems: MonitorProblem[] };

/** Validate one monitor body as a check of the file; the config has it in `checks` (or `skipped`, or neither: another shard's). */
export function parseMonitor(parseConfig: ParseConfig, body: unknown, context: FileContext, env: NodeJS.ProcessEnv = process.env): ParsedMonitor {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { problems: [{ path: '(root)', message: 'must be a JSON object (a check as in the config file)' }] };
  const passwords = literalPasswords(body);
  if (passwords.length) return { problems: passwords };
  const text = JSON.stringify({ ...context, checks: [body] });
  try {
    return { config: parseConfig(text, 'monitor', { env }) };
  } catch (err) {
    if (err instanceof ConfigError) {
      // problems of the file's own blocks cannot happen (the file loaded); any left are the body's
      return { problems: err.problems.map((p) => ({ path: monitorPath(p.path), message: p.message })) };
    }
    throw err;
  }
}

/** Replace every secret value found inside the strings of a body (audit log entries keep no secret). */
export function redactBody<T>(value: T, secrets: readonly string[], mask = '[REDACTED]'): T {
  if (typeof value === 'string') {
    let out: string = value;
    for (const secret of secrets) if (secret && out.includes(secret)) out = out.split(secret).join(mask);
    return out as T;
  }
  if (Array.isArray(value)) return value.map((v) => redactBody(v, secrets, mask)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactBody(v, secrets, mask)])) as T;
  return value;
}

/**
 * The effective config: the file's, with the monitors' checks after its own
 * (a monitor never shadows a file check: the API refuses the name), their
 * secrets and skipped checks added.
 */
export function mergeMonitors(file: SidecarConfig, monitors: readonly SidecarConfig[]): SidecarConfig {
  if (monitors.length === 0) return file;
  const fileNames = new Set(file.checks.map((c) => c.name));
  const checks: CheckConfig[] = [...file.checks];
  const skipped = [...file.skipped];
  const secrets = new Set(file.secrets);
  let total = file.shard?.total ?? 0;
  for (const monitor of monitors) {
    for (const check of monitor.checks) if (!fileNames.has(check.name)) checks.push(check);
    skipped.push(...monitor.skipped);
    for (const secret of monitor.secrets) secrets.add(secret);
    total += 1;
  }
  const shard = file.shard ? { ...file.shard, owned: file.shard.owned + (checks.length - file.checks.length), total } : undefined;
  return { ...file, checks, skipped, secrets: [...secrets], ...(shard ? { shard } : {}) };
}
