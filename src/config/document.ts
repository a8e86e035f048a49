/**
 * The YAML document with its positions: parsing (references masked so that
 * `${…}` braces are not flow indicators), paths of nodes, and the line:col of a
 * key or value for messages.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { ConfigProblem } from '../errors';

/**
 * `{` and `}` are flow indicators in YAML, so `retry: { attempts: ${N} }` would not
 * parse. Before parsing, the braces of each reference are swapped for two private-use
 * characters (same length, so every line:col stays right) and swapped back in each
 * scalar before substitution.
 */
const MASK_OPEN = '\uE000';
const MASK_CLOSE = '\uE001';
const maskReferences = (text: string) => text.replace(/\$\{([^{}\n]*)\}/g, `$${MASK_OPEN}$1${MASK_CLOSE}`);
export const unmask = (text: string) => (text.includes(MASK_OPEN) ? text.replaceAll(MASK_OPEN, '{').replaceAll(MASK_CLOSE, '}') : text);

export type Path = (string | number)[];
export interface Position {
  line: number;
  column: number;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out || '(root)';
}

export interface ParsedDocument {
  doc: Document;
  /** line and column of an offset in the source */
  at: (offset: number | undefined) => Position;
  /** syntax problems (duplicate keys with both places); a document with any has no reliable structure */
  problems: ConfigProblem[];
}

export function parseYaml(text: string): ParsedDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(maskReferences(text), { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };
  const problems: ConfigProblem[] = [];
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
  return { doc, at, problems };
}

/** The document as plain data, or the problem that stops it (an alias to no anchor, an alias bomb). */
export function toPlainData({ doc, at }: ParsedDocument): { data: Record<string, unknown> } | { problem: ConfigProblem } {
  try {
    return { data: (doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown> | null) ?? {} };
  } catch (err) {
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
    return { problem: { ...at(offset), path: '', message: `YAML: ${message}` } };
  }
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

export function pathOf(ancestry: readonly unknown[], node: unknown): Path {
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

export function nodeAt(doc: Document, path: Path): YamlNode | undefined {
  if (path.length === 0) return doc.contents ?? undefined;
  const node = doc.getIn(path, true);
  return node && typeof node === 'object' && 'range' in (node as object) ? (node as YamlNode) : undefined;
}

export function keyNodeAt(doc: Document, path: Path): YamlNode | undefined {
  const parent = nodeAt(doc, path.slice(0, -1));
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[path.length - 1]));
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return parent;
}

/** The node at path, or the key naming it, or the nearest ancestor that exists. */
export function closestNode(doc: Document, path: Path): YamlNode | undefined {
  for (let len = path.length; len >= 0; len--) {
    const node = len === path.length ? nodeAt(doc, path) : nodeAt(doc, path.slice(0, len));
    if (node) return node;
  }
  return undefined;
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
