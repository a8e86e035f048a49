/**
 * docs/configuration.md stays true: it names every key of the schema, and
 * every YAML example in it is a config the loader accepts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/probes/registry';
import { CHECK_KINDS, configJsonSchema } from '../../src/probes/registry';

const DOC = readFileSync(join(__dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');

interface Node {
  properties?: Record<string, Node>;
  items?: Node;
  oneOf?: Node[];
  anyOf?: Node[];
}

/** every key path of the schema: `server.auth.keys[].rateLimit`, `checks[].expect.status` (kinds merged) */
function keyPaths(node: Node, path: string, out: Set<string>): Set<string> {
  for (const variant of node.oneOf ?? node.anyOf ?? []) keyPaths(variant, path, out);
  if (node.items) keyPaths(node.items, `${path}[]`, out);
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const sub = path ? `${path}.${key}` : key;
    out.add(sub);
    keyPaths(child, sub, out);
  }
  return out;
}

/**
 * The YAML examples of another doc that are configs (every top-level key is a
 * config key; Kubernetes snippets are not), loaded with `${file:…}` references
 * read as placeholder text: `[file, index, config]`.
 */
function configExamples(doc: string): { index: number; text: string }[] {
  const topLevel = new Set(Object.keys((configJsonSchema() as Node).properties ?? {}));
  return [...readFileSync(join(__dirname, '..', '..', 'docs', doc), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m, index) => ({ index: index + 1, text: m[1]! }))
    .filter(({ text }) => {
      const keys = [...text.matchAll(/^([A-Za-z]\w*):/gm)].map((k) => k[1]!);
      return keys.length > 0 && keys.every((k) => topLevel.has(k));
    });
}

for (const doc of ['probes.md']) {
  describe(`docs/${doc}`, () => {
    it('every config example loads (file references read as placeholder text)', () => {
      const examples = configExamples(doc);
      assert.ok(examples.length >= 5, `only ${examples.length} config examples`);
      for (const { index, text } of examples) {
        parseConfig(text, `docs/${doc} example ${index}`, { env: {}, readFile: (path) => `contents of ${path}` });
      }
    });
  });
}

describe('docs/configuration.md', () => {
  it('documents every key of the schema (as `path` in a reference table)', () => {
    const paths = [...keyPaths(configJsonSchema() as Node, '', new Set())];
    // a section (object) is documented through its leaves; `checks[].tls.*` covers grpc's tls table
    const missing = paths.filter((p) => !DOC.includes(`\`${p}\``) && !paths.some((q) => q.startsWith(`${p}.`) || q.startsWith(`${p}[]`)));
    assert.deepEqual(missing, []);
    assert.ok(paths.length > 100, `only ${paths.length} key paths found: the walk is broken`);
  });

  it('names every check kind', () => {
    for (const kind of CHECK_KINDS) assert.ok(DOC.includes(`### \`kind: ${kind}\``), `no section for kind ${kind}`);
  });

  it('every yaml example loads', () => {
    const blocks = [...DOC.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(blocks.length >= CHECK_KINDS.length + 1, `only ${blocks.length} yaml examples`);
    const kinds = new Set<string>();
    blocks.forEach((block, index) => {
      const config = parseConfig(block, `docs/configuration.md example ${index + 1}`, { env: {} });
      for (const check of config.checks) kinds.add(check.kind);
    });
    // every kind has an example that actually runs (not only skipped)
    assert.deepEqual([...kinds].sort(), [...CHECK_KINDS].sort());
  });
});
