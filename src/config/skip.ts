/**
 * A check whose target (its kind's `url` or `host`) needs an unset environment
 * variable is skipped (said once in the log by the caller) but still validated
 * with a placeholder target, so a typo in it is found on any machine; an unset
 * variable anywhere else is an error.
 */
import type { Document } from 'yaml';
import type { ConfigProblem } from '../errors';
import { formatPath, nodeAt, type Position } from './document';
import type { Unresolved } from './substitute';
import type { CheckKindSpec } from './types';

export interface Skipping {
  /** index in `checks` → why it is skipped */
  indexes: Map<number, string>;
  skipped: { name: string; reason: string }[];
  /** unset variables outside a check target */
  problems: ConfigProblem[];
}

/** Decide which checks are skipped; their targets in `input` become the kind's placeholder (and leave `failed`). */
export function skipUnsetTargets(
  input: Record<string, unknown>,
  unresolved: readonly Unresolved[],
  kinds: ReadonlyMap<string, CheckKindSpec>,
  where: { doc: Document; at: (offset: number | undefined) => Position; failed: Set<string> },
): Skipping {
  const checks: unknown[] = Array.isArray(input.checks) ? input.checks : [];
  /** the kind of checks[index] (undefined when it names none the registry knows) */
  const kindAt = (index: number) => {
    const check = checks[index];
    return check && typeof check === 'object' ? kinds.get(String((check as Record<string, unknown>).kind)) : undefined;
  };
  const indexes = new Map<number, string>();
  for (const ref of unresolved) {
    const [first, index, field] = ref.path;
    if (first === 'checks' && typeof index === 'number' && ref.path.length === 3 && field === (kindAt(index)?.targetField ?? 'url')) {
      if (!indexes.has(index)) indexes.set(index, `environment variable ${ref.variable} is not set (${field})`);
    }
  }
  const problems: ConfigProblem[] = [];
  for (const ref of unresolved) {
    const [first, index] = ref.path;
    if (first === 'checks' && typeof index === 'number' && indexes.has(index)) continue;
    problems.push({ ...where.at(nodeAt(where.doc, ref.path)?.range?.[0]), path: formatPath(ref.path), message: `environment variable ${ref.variable} is not set and has no default` });
  }
  const skipped: { name: string; reason: string }[] = [];
  checks.forEach((check: unknown, index) => {
    const reason = indexes.get(index);
    if (reason === undefined || !check || typeof check !== 'object') return;
    const fields = check as Record<string, unknown>;
    const name = fields.name;
    skipped.push({ name: typeof name === 'string' ? name : `checks[${index}]`, reason });
    const kind = kindAt(index);
    const field = kind?.targetField ?? 'url';
    fields[field] = kind?.placeholder ?? 'http://unset.invalid:1';
    where.failed.delete(formatPath(['checks', index, field]));
  });
  return { indexes, skipped, problems };
}
