/**
 * Problems as people read them: one sentence per schema issue
 * (`FILE:LINE:COL key: problem`, positions from the YAML document), "did you
 * mean" for a misspelt key, plain words for file-system errors. zod's own
 * wording ("Invalid input") never reaches the user; the allowed keys come from
 * the JSON Schema of the config (a documented format), not from zod internals.
 */
import type { Document } from 'yaml';
import { isScalar } from 'yaml';
import type { ConfigProblem } from '../errors';
import { closestNode, formatPath, keyNodeAt, nodeAt, type Path, type Position } from './document';

/** The part of a JSON Schema node walked for "did you mean". */
export interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  additionalProperties?: JsonSchemaNode | boolean;
  oneOf?: JsonSchemaNode[];
  anyOf?: JsonSchemaNode[];
  const?: unknown;
  type?: string;
}

/** What a zod issue carries that the sentences use (zod 4's issue fields). */
export interface SchemaIssue {
  code: string;
  message: string;
  path: PropertyKey[];
  keys?: string[];
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

export interface IssueContext {
  doc: Document;
  at: (offset: number | undefined) => Position;
  /** the data that was validated (for the keys allowed where a union depends on it) */
  input: unknown;
  /** the JSON Schema of the config (input side) */
  jsonSchema: () => JsonSchemaNode;
  /** paths (formatted) whose value could not be substituted: their issues are noise */
  failed: Set<string>;
  /** paths (formatted) whose value came from a substitution: never echoed */
  substituted: Set<string>;
  /** path (formatted) → the variables (or files) its value came from: named in the message */
  origins?: Map<string, string[]>;
}

/** One problem per schema issue (each unknown key its own, with a suggestion). */
export function schemaProblems(issues: readonly SchemaIssue[], context: IssueContext): ConfigProblem[] {
  const { doc, at } = context;
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part)) as Path;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys ?? []) {
        const keyPath = [...path, key];
        const suggestion = closestKey(key, knownKeysAt(context.jsonSchema(), path, context.input));
        problems.push({ ...at(keyNodeAt(doc, keyPath)?.range?.[0]), path: formatPath(keyPath), message: suggestion ? `unknown key (did you mean "${suggestion}"?)` : 'unknown key' });
      }
      continue;
    }
    if (isUnder(path, context.failed)) continue;
    const node = closestNode(doc, path);
    const exact = nodeAt(doc, path);
    const shown = exact && !context.substituted.has(formatPath(path)) && isScalar(exact) ? exact.value : undefined;
    const origins = context.origins?.get(formatPath(path));
    const from = origins ? `; the value comes from ${origins.join(' and ')}` : '';
    problems.push({ ...at(node?.range?.[0]), path: formatPath(path), message: describeIssue(issue, exact !== undefined, shown) + from });
  }
  return problems;
}

export function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

function isUnder(path: Path, paths: Set<string>): boolean {
  for (let len = path.length; len > 0; len--) if (paths.has(formatPath(path.slice(0, len)))) return true;
  return false;
}

export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory', ENOTDIR: 'a parent is not a directory' };
  if (code && words[code]) return `${words[code]} (${code})`;
  return code ?? (err instanceof Error ? err.message : String(err));
}

/** Keys the schema allows in the mapping at path (for "did you mean"). */
function knownKeysAt(schema: JsonSchemaNode, path: Path, input: unknown): string[] {
  let node: JsonSchemaNode | undefined = schema;
  let value: unknown = input;
  for (const part of path) {
    node = chooseOption(node, value);
    if (!node) return [];
    if (node.properties) node = node.properties[String(part)];
    else if (node.items) node = node.items;
    else if (typeof node.additionalProperties === 'object') node = node.additionalProperties;
    else return [];
    value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[part] : undefined;
  }
  const chosen = chooseOption(node, value);
  return chosen?.properties ? Object.keys(chosen.properties) : [];
}

/** The option of a union that the value's discriminator (a property with a `const`) selects. */
function chooseOption(node: JsonSchemaNode | undefined, value: unknown): JsonSchemaNode | undefined {
  const options = node?.oneOf ?? node?.anyOf;
  if (!options) return node;
  const fields = value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  return options.find((option) => Object.entries(option.properties ?? {}).some(([key, field]) => field.const !== undefined && field.const === fields[key]));
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
/** One clear sentence for a schema issue; zod's generic wording ("Invalid input") never reaches the user. */
function describeIssue(issue: SchemaIssue, present: boolean, shown: unknown): string {
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

