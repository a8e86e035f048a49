/**
 * Config loading, a pipeline of the small modules beside this one: YAML with
 * positions (document.ts) → `${…}` substitution inside scalar values
 * (substitute.ts) → checks with an unset target skipped (skip.ts) → strict
 * schema (schema.ts, with the kinds' schemas handed in) → defaults merged per
 * check → shard (shard.ts) → secrets (secrets.ts and each kind's own). Every
 * problem is reported at once as `FILE:LINE:COL path.to.key: problem`
 * (messages.ts).
 */
import { readFileSync } from 'node:fs';
import { isScalar } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors';
import { formatPath, keyNodeAt, nodeAt, parseYaml, toPlainData, type Path } from './document';
import { describeFsError, schemaProblems, sortProblems, type JsonSchemaNode, type SchemaIssue } from './messages';
import { buildConfigSchema, configJsonSchema, type ConfigSchema, type RawCheck } from './schema';
import { notificationSecrets, urlSecrets } from './secrets';
import { ownsCheck, resolveShard } from './shard';
import { resolveSlo } from './slo';
import { skipUnsetTargets } from './skip';
import { substitute } from './substitute';
import type { CheckConfig, CheckKindSpec, ShardInfo, SidecarConfig } from './types';
import { configWarnings } from './warnings';

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** read a `${file:…}` reference; defaults to fs */
  readFile?: (path: string) => string;
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

interface Pipeline {
  schema: ConfigSchema;
  kinds: ReadonlyMap<string, CheckKindSpec>;
  jsonSchema: () => JsonSchemaNode;
}

/** The loader for a config whose checks are of the given kinds (the probe registry's list). */
export function createConfigLoader<C extends CheckConfig>(kinds: readonly CheckKindSpec[]): ConfigLoader<C> {
  const schema = buildConfigSchema(kinds.map((k) => k.schema));
  let json: Record<string, unknown> | undefined; // made on the first unknown key only
  const jsonSchema = () => (json ??= configJsonSchema(schema));
  const pipeline: Pipeline = { schema, kinds: new Map(kinds.map((k) => [k.kind, k])), jsonSchema };
  const parse = (text: string, source: string, options: LoadOptions = {}) => parseConfig(text, source, pipeline, options) as SidecarConfig<C>;
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

function parseConfig(text: string, source: string, { schema, kinds, jsonSchema }: Pipeline, options: LoadOptions): SidecarConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const parsed = parseYaml(text);
  const { doc, at } = parsed;
  // A document that does not parse has no reliable structure: stop here.
  if (parsed.problems.length) throw new ConfigError(source, sortProblems(parsed.problems));

  const { secrets, unresolved, failed, substituted, origins, written, problems } = substitute(doc, { env, readFile, at });
  const plain = toPlainData(parsed);
  if ('problem' in plain) throw new ConfigError(source, sortProblems([...problems, plain.problem]));
  const input = plain.data;
  const skipping = skipUnsetTargets(input, unresolved, kinds, { doc, at, failed });
  problems.push(...skipping.problems);

  // jitless: zod 4 otherwise compiles every object schema to a `new Function` on its first parse
  // (its "JIT"), which costs more than it saves for a config parsed once at start and on reloads.
  // The issues are the same either way (the compiled path falls back to this one on any issue).
  const result = schema.safeParse(input, { jitless: true });
  if (!result.success) problems.push(...schemaProblems(result.error.issues as unknown as SchemaIssue[], { doc, at, input, jsonSchema: () => jsonSchema() as JsonSchemaNode, failed, substituted, origins }));
  if (problems.length) throw new ConfigError(source, sortProblems(problems));
  if (!result.success) throw new Error('unreachable: schema failed without problems');

  const { shard: shardSpec, ...config } = result.data;
  const problemAt = (path: (string | number)[], message: string): ConfigProblem => ({ ...at(nodeAt(doc, path)?.range?.[0]), path: formatPath(path), message });
  // Sharding: resolve `index: auto` from the pod name, then keep only the checks this shard owns.
  let shard: ShardInfo | undefined;
  if (shardSpec) {
    const resolved = resolveShard(shardSpec, env, config.checks.length);
    if ('error' in resolved) throw new ConfigError(source, [problemAt(['shard', 'index'], resolved.error)]);
    shard = resolved.shard;
  }
  const owned = (check: { name: unknown; shard?: number }) => !shard || typeof check.name !== 'string' || ownsCheck(shard, check.name, check.shard);
  // file index of a check → its index in `checks` (skipped and other shards' checks are left out)
  const finalIndex = new Map<number, number>();
  const checks: CheckConfig[] = config.checks
    .filter((check, index) => {
      const keep = !skipping.indexes.has(index) && owned(check);
      if (keep) finalIndex.set(index, finalIndex.size);
      return keep;
    })
    .map((check) => mergeDefaults(check, config.defaults));
  const substitutions = written.flatMap(({ path, text, value }) => {
    if (path[0] !== 'checks') return [{ path, text, value }];
    const index = typeof path[1] === 'number' ? finalIndex.get(path[1]) : undefined;
    return index === undefined ? [] : [{ path: ['checks', index, ...path.slice(2)], text, value }];
  });
  if (shard) shard.owned = config.checks.filter(owned).length;
  for (const key of config.server.auth.keys) secrets.add(key.key);
  // every check's secrets, also those of checks other shards own: redaction errs on the safe side
  for (const check of shard ? config.checks.map((c) => mergeDefaults(c, config.defaults)) : checks) {
    for (const secret of kinds.get(check.kind)?.secrets(check) ?? []) secrets.add(secret);
  }
  for (const secret of notificationSecrets(config)) secrets.add(secret);
  for (const secret of urlSecrets(config.store?.postgres)) secrets.add(secret);
  // A notification target may name only checks that exist (or were skipped for an unset variable).
  const knownChecks = new Set([...config.checks.map((c) => c.name), ...skipping.skipped.map((s) => s.name)]);
  config.notifications.forEach((target, index) =>
    target.checks?.forEach((name, j) => {
      if (!knownChecks.has(name)) problems.push(problemAt(['notifications', index, 'checks', j], `no check named "${name}"`));
    }),
  );
  if (problems.length) throw new ConfigError(source, problems);
  // a skipped check another shard owns is that shard's business
  const ownSkipped = shard ? skipping.skipped.filter((s) => { const c = config.checks.find((x) => x.name === s.name); return !c || owned(c); }) : skipping.skipped;
  // where a key is written (its key, not its value); undefined when the config does not write it
  const positionOf = (path: Path) => {
    const value = nodeAt(doc, path);
    if (!value) return undefined;
    const key = keyNodeAt(doc, path);
    return at((isScalar(key) ? key : value).range?.[0]);
  };
  const warnings = configWarnings({ ...config, checks, skipped: ownSkipped, shard }, { positionOf, start: { line: 0, column: 0 } });
  return { ...config, checks, skipped: ownSkipped, source, secrets: [...secrets].filter((s) => s.length >= 4), warnings, substitutions, ...(shard ? { shard } : {}) };
}

function mergeDefaults(check: RawCheck, defaults: SidecarConfig['defaults']): CheckConfig {
  const slo = resolveSlo(check.slo, defaults.slo);
  return {
    ...stripKey(check, 'slo'),
    ...(slo ? { slo } : {}),
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

function stripKey<T extends object, K extends keyof T>(value: T, key: K): Omit<T, K> {
  const { [key]: _dropped, ...rest } = value;
  return rest;
}

function stripUndefined<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

