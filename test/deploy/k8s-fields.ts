/**
 * Unknown-field check for Kubernetes objects. kubernetes-models' validate()
 * checks types and required fields but accepts unknown keys (a typo such as
 * `restartpolicy` would pass and be dropped by the API server). This walks the
 * object alongside the property lists in kubernetes-models' .d.ts files —
 * the same OpenAPI definitions, so the field names are the real ones.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const MODELS = dirname(require.resolve('kubernetes-models/package.json'));
const NODE_MODULES = dirname(MODELS);

interface Shape {
  props: Map<string, string>;
  imports: Map<string, string>;
  file: string;
}
const cache = new Map<string, Shape>();

function shapeOf(file: string): Shape {
  const cached = cache.get(file);
  if (cached) return cached;
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2]!;
    imports.set(m[1]!, spec.startsWith('.') ? resolve(dirname(file), `${spec}.d.ts`) : join(NODE_MODULES, `${spec}.d.ts`));
  }
  const body = /export interface I\w+(?: extends \w+)? \{([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';
  const props = new Map<string, string>();
  // `"name"?: Type;` on one line, or `"labels"?: {` opening a map type (free-form keys)
  for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.+?);?$/gm)) props.set(m[1]!, m[2]!);
  const shape = { props, imports, file };
  cache.set(file, shape);
  return shape;
}

/** d.ts file of a top-level kind, e.g. ('apps/v1', 'Deployment'). */
export function modelFile(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? apiVersion : apiVersion === 'v1' ? 'v1' : apiVersion;
  return join(MODELS, group, `${kind}.d.ts`);
}

/** Every key path in `value` that the Kubernetes schema does not define. */
export function unknownFields(value: unknown, file: string, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  const shape = shapeOf(file);
  if (shape.props.size === 0) return []; // a type with no declared properties (e.g. IntOrString, Quantity)
  const out: string[] = [];
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const type = shape.props.get(key);
    if (type === undefined) {
      out.push(`${path}${path ? '.' : ''}${key}`);
      continue;
    }
    const childPath = `${path}${path ? '.' : ''}${key}`;
    const element = /^Array<(\w+)>$/.exec(type)?.[1];
    const named = element ?? (/^(\w+)$/.exec(type)?.[1] ?? undefined);
    const target = named ? shape.imports.get(named) : undefined;
    if (!target) continue; // primitives, maps, unions
    if (element && Array.isArray(child)) child.forEach((item, i) => out.push(...unknownFields(item, target, `${childPath}[${i}]`)));
    else out.push(...unknownFields(child, target, childPath));
  }
  return out;
}
