/**
 * Config loading: YAML (positions kept) → `${…}` substitution inside scalar
 * values → strict schema → defaults merged per check. Every problem is
 * reported at once as `FILE:LINE:COL path.to.key: problem`.
 */
import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, parse as parseYamlValue, type Document, type Node as YamlNode, Scalar } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors';
import { configSchema, type RawCheck } from './schema';
import type { CheckConfig, SidecarConfig } from './types';

type Path = (string | number)[];
const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** header names whose values are always treated as secrets */
export const ALWAYS_SECRET_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

interface Unresolved {
  path: Path;
  variable: string;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** read a `${file:…}` reference; defaults to fs */
  readFile?: (path: string) => string;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}

export function loadConfigFile(file: string, options: LoadOptions = {}): SidecarConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ line: 0, column: 0, path: '', message: `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, file, options);
}

export function parseConfig(text: string, source: string, options: LoadOptions = {}): SidecarConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };

  for (const error of doc.errors) {
    problems.push({ ...at(error.pos[0]), path: '', message: `YAML: ${error.message.split('\n')[0]}` });
  }
  if (problems.length) throw new ConfigError(source, problems);

  const secrets = new Set<string>();
  const unresolved: Unresolved[] = [];
  visit(doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const path = pathOf(ancestry, node);
      const original = node.value;
      let wholeReference = false;
      let problem: string | undefined;
      const replaced = original.replace(REFERENCE, (match, inner: string | undefined, offset: number) => {
        if (match === '$${') return '${';
        if (offset === 0 && match.length === original.length) wholeReference = true;
        const spec = inner!.trim();
        if (spec.startsWith('file:')) {
          const path = spec.slice(5);
          try {
            const content = readFile(path).replace(/\r?\n$/, '');
            if (content) secrets.add(content);
            return content;
          } catch (err) {
            problem = `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
            return '';
          }
        }
        const sep = spec.indexOf(':-');
        const name = sep >= 0 ? spec.slice(0, sep) : spec;
        if (!VAR_NAME.test(name)) {
          problem = `bad reference "\${${spec}}": use \${VAR}, \${VAR:-default} or \${file:/path}`;
          return '';
        }
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (sep >= 0) return spec.slice(sep + 2);
        unresolved.push({ path, variable: name });
        return '';
      });
      if (problem) {
        problems.push({ ...at(node.range?.[0]), path: formatPath(path), message: problem });
        return;
      }
      // `port: ${PORT:-9464}` should be a number, as if it had been written plainly.
      if (wholeReference && node.type === Scalar.PLAIN && replaced !== '' && !replaced.includes('\n')) {
        const typed = safeScalar(replaced);
        node.value = typed;
      } else node.value = replaced;
    },
  });
  if (problems.length) throw new ConfigError(source, problems);

  // A check that needs an unset variable is skipped (said once in the log by the caller);
  // an unset variable anywhere else is an error.
  const raw = doc.toJS() as Record<string, unknown> | null;
  const skippedIndexes = new Map<number, string>();
  for (const ref of unresolved) {
    if (ref.path[0] === 'checks' && typeof ref.path[1] === 'number') {
      if (!skippedIndexes.has(ref.path[1])) skippedIndexes.set(ref.path[1], `environment variable ${ref.variable} is not set (${formatPath(ref.path.slice(2))})`);
    } else {
      problems.push({ ...at(nodeAt(doc, ref.path)?.range?.[0]), path: formatPath(ref.path), message: `environment variable ${ref.variable} is not set and has no default` });
    }
  }
  if (problems.length) throw new ConfigError(source, problems);

  const input = raw ?? {};
  const originalIndex: number[] = [];
  const skipped: { name: string; reason: string }[] = [];
  if (Array.isArray(input.checks)) {
    const kept: unknown[] = [];
    input.checks.forEach((check, index) => {
      const reason = skippedIndexes.get(index);
      if (reason === undefined) {
        kept.push(check);
        originalIndex.push(index);
      } else {
        const name = (check as { name?: unknown } | null)?.name;
        skipped.push({ name: typeof name === 'string' ? name : `checks[${index}]`, reason });
      }
    });
    input.checks = kept;
  }

  const result = configSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part));
      if (path[0] === 'checks' && typeof path[1] === 'number') path[1] = originalIndex[path[1]] ?? path[1];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const keyPath = [...path, key];
          problems.push({ ...at(keyNodeAt(doc, keyPath)?.range?.[0]), path: formatPath(keyPath), message: 'unknown key' });
        }
        continue;
      }
      const node = closestNode(doc, path);
      problems.push({ ...at(node?.range?.[0]), path: formatPath(path), message: describeIssue(issue, nodeAt(doc, path) !== undefined) });
    }
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(source, problems);
  }

  const config = result.data;
  const checks: CheckConfig[] = config.checks.map((check) => mergeDefaults(check, config.defaults));
  for (const key of config.server.auth.keys) secrets.add(key.key);
  for (const check of checks) collectCheckSecrets(check, secrets);
  return { ...config, checks, skipped, source, secrets: [...secrets].filter((s) => s.length >= 4) };
}

function mergeDefaults(check: RawCheck, defaults: SidecarConfig['defaults']): CheckConfig {
  return {
    ...check,
    interval: check.interval ?? defaults.interval,
    timeout: check.timeout ?? defaults.timeout,
    retry: {
      attempts: check.retry?.attempts ?? defaults.retry.attempts,
      jitter: check.retry?.jitter ?? defaults.retry.jitter,
      backoff: {
        initial: check.retry?.backoff?.initial ?? defaults.retry.backoff.initial,
        max: check.retry?.backoff?.max ?? defaults.retry.backoff.max,
      },
    },
    breaker: { ...defaults.breaker, ...stripUndefined(check.breaker) },
    thresholds: { ...defaults.thresholds, ...stripUndefined(check.thresholds) },
  } as CheckConfig;
}

function stripUndefined<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function collectCheckSecrets(check: CheckConfig, secrets: Set<string>): void {
  if (check.kind === 'grpc' && check.tls?.key) secrets.add(check.tls.key);
  if (!('url' in check)) return; // dns: no URL, no credentials
  try {
    const url = new URL(check.url);
    if (url.password) {
      secrets.add(url.password);
      secrets.add(decodeURIComponent(url.password));
    }
  } catch {
    /* validated already */
  }
  if (check.kind === 'http') {
    const secretNames = new Set([...ALWAYS_SECRET_HEADERS, ...check.secretHeaders.map((h) => h.toLowerCase())]);
    for (const [name, value] of Object.entries(check.headers)) {
      if (secretNames.has(name.toLowerCase())) {
        secrets.add(value);
        const token = /^\s*\S+\s+(\S+)\s*$/.exec(value)?.[1]; // "Bearer abc" → abc as well
        if (token) secrets.add(token);
      }
    }
    if (check.tls?.key) secrets.add(check.tls.key);
  }
}

function safeScalar(text: string): unknown {
  try {
    const value = parseYamlValue(text);
    return value === null || typeof value === 'object' ? text : value;
  } catch {
    return text;
  }
}

function describeIssue(issue: { code: string; message: string; expected?: unknown; input?: unknown }, present: boolean): string {
  if (!present && issue.code === 'invalid_type') return 'is required';
  if (issue.code === 'invalid_type' && typeof issue.expected === 'string') return `must be ${article(issue.expected)}`;
  if (issue.code === 'invalid_value' && issue.message.startsWith('Invalid option')) {
    return issue.message.replace(/^Invalid option: expected one of /, 'must be one of ').replace(/"/g, '');
  }
  if (issue.code === 'too_small' || issue.code === 'too_big') return issue.message.replace(/^Too (small|big): expected (number|string|array) to (have|be) /, 'must be ').replace(/^Too (small|big): expected /, 'must be ');
  return issue.message;
}

function article(type: string): string {
  if (type === 'array') return 'a list';
  if (type === 'object') return 'a mapping';
  if (type === 'int') return 'a whole number';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function pathOf(ancestry: readonly unknown[], node: unknown): Path {
  const path: Path = [];
  const chain = [...ancestry, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isSeq(parent)) path.push(parent.items.indexOf(child as never));
    else if (isPair(parent) && child === parent.value) path.push(String(isScalar(parent.key) ? parent.key.value : parent.key));
  }
  return path;
}

function nodeAt(doc: Document, path: Path): YamlNode | undefined {
  if (path.length === 0) return doc.contents ?? undefined;
  const node = doc.getIn(path, true);
  return node && typeof node === 'object' && 'range' in (node as object) ? (node as YamlNode) : undefined;
}

function keyNodeAt(doc: Document, path: Path): YamlNode | undefined {
  const parent = nodeAt(doc, path.slice(0, -1));
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[path.length - 1]));
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return parent;
}

/** The node at path, or the key naming it, or the nearest ancestor that exists. */
function closestNode(doc: Document, path: Path): YamlNode | undefined {
  for (let len = path.length; len >= 0; len--) {
    const node = len === path.length ? nodeAt(doc, path) : nodeAt(doc, path.slice(0, len));
    if (node) return node;
  }
  return undefined;
}
