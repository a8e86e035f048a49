/**
 * A small JSON Schema validator for the keywords `health-sidecar schema` emits
 * (zod's toJSONSchema, draft 2020-12 subset). Any other keyword is an error,
 * so a schema change can never make this validator silently accept things.
 */
export type Schema = { [keyword: string]: unknown };

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default', 'examples', 'format']);
const ASSERTIONS = new Set(['type', 'properties', 'additionalProperties', 'required', 'items', 'enum', 'const', 'anyOf', 'oneOf', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'propertyNames']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

export function validateJsonSchema(schema: Schema, value: unknown, path = ''): string[] {
  const at = path || '(root)';
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !ASSERTIONS.has(keyword)) throw new Error(`${at}: JSON Schema keyword "${keyword}" is not supported by this validator`);
  }
  const errors: string[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((want) => want === t || (want === 'number' && t === 'integer'))) return [`${at}: must be ${types.join(' or ')}, got ${t}`];
  }
  if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(value)) errors.push(`${at}: must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !(schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value))) errors.push(`${at}: must be one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern as string, 'u').test(value)) errors.push(`${at}: does not match ${String(schema.pattern)}`);
    if (schema.minLength !== undefined && [...value].length < (schema.minLength as number)) errors.push(`${at}: shorter than ${String(schema.minLength)}`);
    if (schema.maxLength !== undefined && [...value].length > (schema.maxLength as number)) errors.push(`${at}: longer than ${String(schema.maxLength)}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < (schema.minimum as number)) errors.push(`${at}: below ${String(schema.minimum)}`);
    if (schema.maximum !== undefined && value > (schema.maximum as number)) errors.push(`${at}: above ${String(schema.maximum)}`);
    if (schema.exclusiveMinimum !== undefined && value <= (schema.exclusiveMinimum as number)) errors.push(`${at}: must be > ${String(schema.exclusiveMinimum)}`);
    if (schema.exclusiveMaximum !== undefined && value >= (schema.exclusiveMaximum as number)) errors.push(`${at}: must be < ${String(schema.exclusiveMaximum)}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < (schema.minItems as number)) errors.push(`${at}: fewer than ${String(schema.minItems)} items`);
    if (schema.maxItems !== undefined && value.length > (schema.maxItems as number)) errors.push(`${at}: more than ${String(schema.maxItems)} items`);
    if (schema.items) value.forEach((item, i) => errors.push(...validateJsonSchema(schema.items as Schema, item, `${path}[${i}]`)));
  }
  if (t === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required as string[] | undefined) ?? []) if (!(key in obj)) errors.push(`${path ? `${path}.` : ''}${key}: is required`);
    for (const [key, child] of Object.entries(obj)) {
      const where = path ? `${path}.${key}` : key;
      if (schema.propertyNames) errors.push(...validateJsonSchema(schema.propertyNames as Schema, key, `${where}(name)`));
      if (props[key]) errors.push(...validateJsonSchema(props[key], child, where));
      else if (schema.additionalProperties === false) errors.push(`${where}: unknown key`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') errors.push(...validateJsonSchema(schema.additionalProperties as Schema, child, where));
    }
  }
  if (schema.anyOf) {
    const results = (schema.anyOf as Schema[]).map((s) => validateJsonSchema(s, value, path));
    if (!results.some((r) => r.length === 0)) errors.push(...bestBranch(results, at, 'anyOf'));
  }
  if (schema.oneOf) {
    const results = (schema.oneOf as Schema[]).map((s) => validateJsonSchema(s, value, path));
    const passing = results.filter((r) => r.length === 0).length;
    if (passing === 0) errors.push(...bestBranch(results, at, 'oneOf'));
    else if (passing > 1) errors.push(`${at}: matches ${passing} branches of oneOf (must match exactly one)`);
  }
  return errors;
}

/** The errors of the branch that got furthest (fewest errors), for a readable message. */
function bestBranch(results: string[][], at: string, keyword: string): string[] {
  const best = [...results].sort((a, b) => a.length - b.length)[0] ?? [];
  return best.length ? best : [`${at}: matches no branch of ${keyword}`];
}
