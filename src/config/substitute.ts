/**
 * `${…}` references inside scalar values: `${VAR}`, `${VAR:-default}`,
 * `${file:/path}` and `$${` for a literal `${`. Pure over the YAML document and
 * the environment it is given; it reports what it did (secrets, unset
 * variables, paths it touched) and never throws.
 */
import { Scalar, visit, type Document } from 'yaml';
import type { ConfigProblem } from '../errors';
import { formatPath, pathOf, unmask, type Path, type Position } from './document';
import { describeFsError } from './messages';

const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface Unresolved {
  path: Path;
  variable: string;
}

export interface Substitution {
  /** every `${file:…}` content: secrets by origin */
  secrets: Set<string>;
  /** references to unset variables without a default */
  unresolved: Unresolved[];
  /** paths (formatted) whose value could not be substituted: the schema's complaints about them are noise */
  failed: Set<string>;
  /** paths (formatted) whose value came from a substitution: never echoed in a message */
  substituted: Set<string>;
  /** path (formatted) → where its value came from ("LOG_LEVEL", "file /run/x"): a message names them */
  origins: Map<string, string[]>;
  /** every substituted scalar: where, as written (`${VAR}` unexpanded) and the value it became */
  written: WrittenValue[];
  problems: ConfigProblem[];
}

export interface WrittenValue {
  path: Path;
  text: string;
  value: string;
}

export interface SubstituteOptions {
  env: NodeJS.ProcessEnv;
  readFile: (path: string) => string;
  /** line and column of an offset in the source */
  at: (offset: number | undefined) => Position;
}

/** Replace every reference in the document's scalars in place (and unmask the braces). */
export function substitute(doc: Document, { env, readFile, at }: SubstituteOptions): Substitution {
  const result: Substitution = { secrets: new Set(), unresolved: [], failed: new Set(), substituted: new Set(), origins: new Map(), written: [], problems: [] };
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
      const origins: string[] = [];
      const replaced = original.replace(REFERENCE, (match, inner: string | undefined, offset: number) => {
        if (match === '$${') return '${';
        if (offset === 0 && match.length === original.length) wholeReference = true;
        const spec = inner!.trim();
        if (spec.startsWith('file:')) {
          const file = spec.slice(5);
          try {
            const content = readFile(file).replace(/\r?\n$/, '');
            origins.push(`file ${file}`);
            if (content) result.secrets.add(content);
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
        if (value !== undefined && value !== '') {
          origins.push(name);
          return value;
        }
        if (sep >= 0) return spec.slice(sep + 2);
        result.unresolved.push({ path, variable: name });
        unset = true;
        return '';
      });
      result.substituted.add(formatPath(path));
      if (origins.length) result.origins.set(formatPath(path), origins);
      result.written.push({ path, text: original, value: replaced });
      if (problem) {
        result.problems.push({ ...at(node.range?.[0]), path: formatPath(path), message: problem });
        result.failed.add(formatPath(path));
        return;
      }
      if (unset) result.failed.add(formatPath(path));
      // `port: ${PORT:-9464}` is a number, as if it had been written plainly; a quoted
      // "${PORT}" stays a string. Only numbers and booleans are recognised: a value is
      // never parsed as YAML structure (no injection of keys or lists from the environment).
      node.value = wholeReference && node.type === Scalar.PLAIN ? typedScalar(replaced) : replaced;
    },
  });
  return result;
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
