/**
 * Config loading: YAML (positions kept) → `${…}` substitution inside scalar
 * values → strict schema → defaults merged per check. Every problem is
 * reported at once as `FILE:LINE:COL path.to.key: problem`.
 */
import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode, Scalar } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors';
import { ownsCheck, ordinalFromEnv } from '../health/shard';
import { buildConfigSchema, configJsonSchema, type ConfigSchema, type RawCheck } from './schema';
import { notificationSecrets } from './secrets';
import type { CheckConfig, CheckKindSpec, ShardInfo, SidecarConfig } from './types';

type Path = (string | number)[];
const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
/**
 * `{` and `}` are flow indicators in YAML, so `retry: { attempts: ${N} }` would not
 * parse. Before parsing, the braces of each reference are swapped for two private-use
 * characters (same length, so every line:col stays right) and swapped back in each
 * scalar before substitution.
 */
const MASK_OPEN = '\uE000';
const MASK_CLOSE = '\uE001';
const maskReferences = (text: string) => text.replace(/\$\{([^{}\n]*)\}/g, `$${MASK_OPEN}$1${MASK_CLOSE}`);
const unmask = (text: string) => (text.includes(MASK_OPEN) ? text.replaceAll(MASK_OPEN, '{').replaceAll(MASK_CLOSE, '}') : text);
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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

/** `C`: the union of the kinds' check types (the checks of a loaded config are of those kinds) */
export interface ConfigLoader<C extends CheckConfig = CheckConfig> {
  /** the check kinds' names, in the order the registry lists them */
  readonly checkKinds: readonly string[];
  readonly schema: ConfigSchema;
  loadConfigFile(file: string, options?: LoadOptions): SidecarConfig<C>;
  parseConfig(text: string, source: string, options?: LoadOptions): SidecarConfig<C>;
  /** JSON Schema of the config file (`health-sidecar schema`) */
  jsonSchema(): Record<string, unknown>;
}

/** The loader for a config whose checks are of the given kinds (the probe registry's list). */
export function createConfigLoader<C extends CheckConfig>(kinds: readonly CheckKindSpec[]): ConfigLoader<C> {
  const schema = buildConfigSchema(kinds.map((k) => k.schema));
  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  const parse = (text: string, source: string, options: LoadOptions = {}) => parseConfig(text, source, schema, byKind, options) as SidecarConfig<C>;
  return {
    checkKinds: kinds.map((k) => k.kind),
    schema,
    parseConfig: parse,
    loadConfigFile(file, options = {}) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError(file, [{ line: 0, column: 0, path: '', message: `cannot read config file: ${describeFsError(err)}` }]);
      }
      return parse(text, file, options);
    },
    jsonSchema: () => configJsonSchema(schema),
  };
}

function parseConfig(text: string, source: string, configSchema: ConfigSchema, kinds: ReadonlyMap<string, CheckKindSpec>, options: LoadOptions): SidecarConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const lineCounter = new LineCounter();
  const doc = parseDocument(maskReferences(text), { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };

  for (const error of doc.errors) {
    if (error.code === 'DUPLICATE_KEY') {
      const duplicate = duplicateKeyAt(doc, error.pos[0]);
      if (duplicate) {
        const first = duplicate.firstOffset === undefined ? '' : ` (first defined on line ${at(duplicate.firstOffset).line})`;
        problems.push({ ...at(error.pos[0]), path: formatPath(duplicate.path), message: `duplicate key${first}` });
        continue;
      }
    }
    problems.push({ ...at(error.pos[0]), path: '', message: `YAML: ${yamlMessage(error.message)}` });
  }
  // A document that does not parse has no reliable structure: stop here.
  if (problems.length) throw new ConfigError(source, sortProblems(problems));

  const secrets = new Set<string>();
  const unresolved: Unresolved[] = [];
  /** paths (formatted) whose value could not be substituted: the schema's complaints about them are noise */
  const failed = new Set<string>();
  /** paths (formatted) whose value came from a substitution: never echoed in a message */
  const substituted = new Set<string>();
  visit(doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== 'string') return;
      const original = unmask(node.value);
      node.value = original;
      if (!original.includes('${')) return;
      const path = pathOf(ancestry, node);
      let wholeReference = false;
      let problem: string | undefined;
      let unset = false;
      const replaced = original.replace(REFERENCE, (match, inner: string | undefined, offset: number) => {
        if (match === '$${') return '${';
        if (offset === 0 && match.length === original.length) wholeReference = true;
        const spec = inner!.trim();
        if (spec.startsWith('file:')) {
          const file = spec.slice(5);
          try {
            const content = readFile(file).replace(/\r?\n$/, '');
            if (content) secrets.add(content);
            return content;
          } catch (err) {
            problem ??= `cannot read ${file} (\${file:…} reference): ${describeFsError(err)}`;
            return '';
          }
        }
        const sep = spec.indexOf(':-');
        const name = sep >= 0 ? spec.slice(0, sep) : spec;
        if (!VAR_NAME.test(name)) {
          problem ??= `bad reference "\${${spec}}": use \${VAR}, \${VAR:-default}, \${file:/path} or $\${ for a literal \${`;
          return '';
        }
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (sep >= 0) return spec.slice(sep + 2);
        unresolved.push({ path, variable: name });
        unset = true;
        return '';
      });
      substituted.add(formatPath(path));
      if (problem) {
        problems.push({ ...at(node.range?.[0]), path: formatPath(path), message: problem });
        failed.add(formatPath(path));
        return;
      }
      if (unset) failed.add(formatPath(path));
      // `port: ${PORT:-9464}` is a number, as if it had been written plainly; a quoted
      // "${PORT}" stays a string. Only numbers and booleans are recognised: a value is
      // never parsed as YAML structure (no injection of keys or lists from the environment).
      node.value = wholeReference && node.type === Scalar.PLAIN ? typedScalar(replaced) : replaced;
    },
  });

  // A check whose target (url, or host for dns) needs an unset variable is skipped
  // (said once in the log by the caller) but still validated with a placeholder
  // target, so a typo in it is found on any machine; an unset variable anywhere else is an error.
  let raw: Record<string, unknown> | null;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown> | null;
  } catch (err) {
    // an alias to an anchor that does not exist, or an alias bomb
    let offset: number | undefined;
    visit(doc, {
      Alias(_key, alias) {
        if (alias.resolve(doc) !== undefined) return undefined;
        offset = alias.range?.[0];
        return visit.BREAK;
      },
    });
    // the alias name is not repeated: an unquoted password starting with * is read as an alias
    const message = /^Unresolved alias/.test((err as Error).message)
      ? 'alias (*name) refers to no anchor defined before it; quote a value that starts with *'
      : yamlMessage((err as Error).message);
    problems.push({ ...at(offset), path: '', message: `YAML: ${message}` });
    throw new ConfigError(source, sortProblems(problems));
  }
  const input = raw ?? {};
  const inputChecks: unknown[] = Array.isArray(input.checks) ? input.checks : [];
  /** the kind of checks[index] (undefined when it names none the registry knows) */
  const kindAt = (index: number) => {
    const check = inputChecks[index];
    return check && typeof check === 'object' ? kinds.get(String((check as Record<string, unknown>).kind)) : undefined;
  };
  const skippedIndexes = new Map<number, string>();
  for (const ref of unresolved) {
    const [first, index, field] = ref.path;
    if (first === 'checks' && typeof index === 'number' && ref.path.length === 3 && field === (kindAt(index)?.targetField ?? 'url')) {
      if (!skippedIndexes.has(index)) skippedIndexes.set(index, `environment variable ${ref.variable} is not set (${field})`);
    }
  }
  for (const ref of unresolved) {
    const [first, index] = ref.path;
    if (first === 'checks' && typeof index === 'number' && skippedIndexes.has(index)) continue;
    problems.push({ ...at(nodeAt(doc, ref.path)?.range?.[0]), path: formatPath(ref.path), message: `environment variable ${ref.variable} is not set and has no default` });
  }
  const skipped: { name: string; reason: string }[] = [];
  inputChecks.forEach((check: unknown, index) => {
    const reason = skippedIndexes.get(index);
    if (reason === undefined || !check || typeof check !== 'object') return;
    const fields = check as Record<string, unknown>;
    const name = fields.name;
    skipped.push({ name: typeof name === 'string' ? name : `checks[${index}]`, reason });
    const kind = kindAt(index);
    const field = kind?.targetField ?? 'url';
    fields[field] = kind?.placeholder ?? 'http://unset.invalid:1';
    failed.delete(formatPath(['checks', index, field]));
  });

  const result = configSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part));
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const keyPath = [...path, key];
          const suggestion = closestKey(key, knownKeysAt(configSchema, path, input));
          problems.push({ ...at(keyNodeAt(doc, keyPath)?.range?.[0]), path: formatPath(keyPath), message: suggestion ? `unknown key (did you mean "${suggestion}"?)` : 'unknown key' });
        }
        continue;
      }
      if (isUnder(path, failed)) continue;
      const node = closestNode(doc, path);
      const exact = nodeAt(doc, path);
      const shown = exact && !substituted.has(formatPath(path)) && isScalar(exact) ? exact.value : undefined;
      problems.push({ ...at(node?.range?.[0]), path: formatPath(path), message: describeIssue(issue, exact !== undefined, shown) });
    }
  }
  if (problems.length) throw new ConfigError(source, sortProblems(problems));
  if (!result.success) throw new Error('unreachable: schema failed without problems');

  const { shard: shardSpec, ...config } = result.data;
  // Sharding: resolve `index: auto` from the pod name, then keep only the checks this shard owns.
  let shard: ShardInfo | undefined;
  if (shardSpec) {
    let index = shardSpec.index;
    let indexFrom = 'config';
    if (index === 'auto') {
      const ordinal = ordinalFromEnv(env);
      if ('error' in ordinal) problems.push({ ...at(nodeAt(doc, ['shard', 'index'])?.range?.[0]), path: 'shard.index', message: ordinal.error });
      else if (ordinal.index >= shardSpec.count) {
        problems.push({ ...at(nodeAt(doc, ['shard', 'index'])?.range?.[0]), path: 'shard.index', message: `auto: ordinal ${ordinal.index} (from ${ordinal.from}) is not less than shard.count (${shardSpec.count}); more replicas than shards?` });
      } else ({ index, from: indexFrom } = ordinal);
    }
    if (problems.length) throw new ConfigError(source, problems);
    shard = { index: index as number, count: shardSpec.count, indexFrom, owned: 0, total: config.checks.length };
  }
  const owned = (check: { name: unknown; shard?: number }) => !shard || typeof check.name !== 'string' || ownsCheck(shard, check.name, check.shard);
  const checks: CheckConfig[] = config.checks
    .filter((check, index) => !skippedIndexes.has(index) && owned(check))
    .map((check) => mergeDefaults(check, config.defaults));
  if (shard) shard.owned = config.checks.filter(owned).length;
  for (const key of config.server.auth.keys) secrets.add(key.key);
  // every check's secrets, also those of checks other shards own: redaction errs on the safe side
  for (const check of shard ? config.checks.map((c) => mergeDefaults(c, config.defaults)) : checks) {
    for (const secret of kinds.get(check.kind)?.secrets(check) ?? []) secrets.add(secret);
  }
  for (const secret of notificationSecrets(config)) secrets.add(secret);
  // A notification target may name only checks that exist (or were skipped for an unset variable).
  const knownChecks = new Set([...config.checks.map((c) => c.name), ...skipped.map((s) => s.name)]);
  config.notifications.forEach((target, index) =>
    target.checks?.forEach((name, j) => {
      if (knownChecks.has(name)) return;
      const path = ['notifications', index, 'checks', j];
      problems.push({ ...at(nodeAt(doc, path)?.range?.[0]), path: formatPath(path), message: `no check named "${name}"` });
    }),
  );
  if (problems.length) throw new ConfigError(source, problems);
  // a skipped check another shard owns is that shard's business
  const ownSkipped = shard ? skipped.filter((s) => { const c = config.checks.find((x) => x.name === s.name); return !c || owned(c); }) : skipped;
  return { ...config, checks, skipped: ownSkipped, source, secrets: [...secrets].filter((s) => s.length >= 4), ...(shard ? { shard } : {}) };
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

/**
 * The value of a plain scalar that was one whole `${…}` reference: a number or a
 * boolean when it reads as one, else the text unchanged. Never YAML structure,
 * never a different string (quotes and `#` in a secret stay as they are).
 */
function typedScalar(text: string): unknown {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^[-+]?(?:\d+|\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(text)) return Number(text);
  return text;
}

/**
 * The parser's message, first line only, without the quoted source text some
 * messages end with ("Unexpected scalar token in YAML stream: "…""): that text
 * may be a password on a malformed line. A short punctuation token is kept.
 */
function yamlMessage(message: string): string {
  const first = unmask(message.split('\n')[0]!);
  return first.replace(/: "(.*)"$/, (whole, token: string) => (/^[\]\[{}:,\-?|>]{1,2}$/.test(token) ? whole : ''));
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

function isUnder(path: Path, paths: Set<string>): boolean {
  for (let len = path.length; len > 0; len--) if (paths.has(formatPath(path.slice(0, len)))) return true;
  return false;
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory', ENOTDIR: 'a parent is not a directory' };
  if (code && words[code]) return `${words[code]} (${code})`;
  return code ?? (err instanceof Error ? err.message : String(err));
}

/** Where a duplicate key found by the YAML parser sits, and where the key was first defined. */
function duplicateKeyAt(doc: Document, offset: number): { path: Path; firstOffset: number | undefined } | undefined {
  let found: { path: Path; firstOffset: number | undefined } | undefined;
  visit(doc, {
    Map(_key, map, ancestry) {
      const pair = map.items.find((p) => isScalar(p.key) && p.key.range?.[0] === offset);
      if (!pair || !isScalar(pair.key)) return undefined;
      const name = pair.key.value;
      const first = map.items.find((p) => isScalar(p.key) && p.key.value === name);
      found = { path: [...pathOf(ancestry, map), String(name)], firstOffset: first && first !== pair && isScalar(first.key) ? first.key.range?.[0] : undefined };
      return visit.BREAK;
    },
  });
  return found;
}

interface ZodLike {
  _zod: { def: Record<string, unknown> & { type: string } };
}

/** Keys the schema allows in the mapping at path (for "did you mean"). */
function knownKeysAt(configSchema: ConfigSchema, path: Path, input: unknown): string[] {
  let schema: ZodLike | undefined = configSchema as unknown as ZodLike;
  let value: unknown = input;
  for (const part of path) {
    schema = unwrapSchema(schema, value);
    const def = schema?._zod.def;
    if (!def) return [];
    if (def.type === 'object') schema = (def.shape as Record<string, ZodLike>)[String(part)];
    else if (def.type === 'array') schema = def.element as ZodLike;
    else if (def.type === 'record') schema = def.valueType as ZodLike;
    else return [];
    value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[part] : undefined;
  }
  const def = unwrapSchema(schema, value)?._zod.def;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

function unwrapSchema(schema: ZodLike | undefined, value: unknown): ZodLike | undefined {
  for (let depth = 0; schema && depth < 20; depth++) {
    const def = schema._zod.def;
    if (['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional'].includes(def.type)) schema = def.innerType as ZodLike;
    else if (def.type === 'pipe') schema = def.in as ZodLike;
    else if (def.type === 'union' && typeof def.discriminator === 'string') {
      const wanted = value && typeof value === 'object' ? (value as Record<string, unknown>)[def.discriminator] : undefined;
      schema = (def.options as ZodLike[]).find((option) => {
        const literal = unwrapSchema(option, value)?._zod.def;
        const field = literal?.type === 'object' ? (literal.shape as Record<string, ZodLike>)[def.discriminator as string]?._zod.def : undefined;
        return Array.isArray(field?.values) && field.values.includes(wanted);
      });
    } else return schema;
  }
  return schema;
}

/** The allowed key a misspelt key most likely meant: same letters in another case, or at most 2 edits away. */
function closestKey(key: string, candidates: string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = candidates.find((c) => c.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= 2 && distance < key.length / 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

interface Issue {
  code: string;
  message: string;
  expected?: unknown;
  origin?: unknown;
  minimum?: unknown;
  maximum?: unknown;
  inclusive?: boolean;
  values?: unknown[];
  note?: string;
  options?: unknown[];
  format?: string;
  prefix?: string;
  pattern?: string;
  errors?: { code: string; expected?: unknown }[][];
}

/** One clear sentence for a schema issue; zod's generic wording ("Invalid input") never reaches the user. */
function describeIssue(issue: Issue, present: boolean, shown: unknown): string {
  const got = shown === undefined || shown === null || String(shown).length > 60 ? '' : ` (got ${JSON.stringify(shown)})`;
  if (issue.code === 'invalid_union' && issue.note === 'No matching discriminator' && Array.isArray(issue.options)) {
    const list = issue.options.join(', ');
    return present ? `must be one of ${list}${got}` : `is required: one of ${list}`;
  }
  if (!present && (issue.code === 'invalid_type' || issue.code === 'invalid_union')) return 'is required';
  // a message written for the rule in schema.ts says it best
  if (!/^(Invalid|Too (small|big)|Unrecognized)/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      if (typeof issue.expected !== 'string') return 'has the wrong type';
      return shown === null ? `is empty; must be ${article(issue.expected)}` : `must be ${article(issue.expected)}`;
    case 'invalid_value': {
      const values = (issue.values ?? []).map(String);
      return values.length === 1 ? `must be ${values[0]}${got}` : `must be one of ${values.join(', ')}${got}`;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = String(small ? issue.minimum : issue.maximum);
      if (issue.origin === 'string') return small && limit === '1' ? 'must not be empty' : `must be at ${small ? 'least' : 'most'} ${limit} characters`;
      if (issue.origin === 'array') return small && limit === '1' ? 'must not be empty' : `must have at ${small ? 'least' : 'most'} ${limit} items`;
      if (issue.inclusive === false) return `must be ${small ? 'greater' : 'less'} than ${limit}`;
      return `must be at ${small ? 'least' : 'most'} ${limit}`;
    }
    case 'invalid_format':
      if (issue.format === 'starts_with' && issue.prefix !== undefined) return `must start with "${issue.prefix}"`;
      if (issue.format === 'regex' && issue.pattern !== undefined) return `must match ${issue.pattern}`;
      return issue.message.replace(/^Invalid string: /, '');
    case 'invalid_union': {
      const types = [...new Set((issue.errors ?? []).map((e) => e[0]).filter((e) => e?.code === 'invalid_type' && typeof e.expected === 'string').map((e) => article(e!.expected as string)))];
      return types.length ? `must be ${types.join(' or ')}` : 'is not valid here';
    }
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

function article(type: string): string {
  if (type === 'array') return 'a list';
  if (type === 'object' || type === 'record') return 'a mapping';
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
