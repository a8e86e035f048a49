/**
 * Check sharding: `shard: { index, count }` splits one check list across
 * `count` replicas (a StatefulSet), each probing only the checks it owns.
 *
 * Assignment is rendezvous (highest-random-weight) hashing of the check name:
 * every replica scores each (name, shard) pair with the same hash and a check
 * belongs to the shard with the highest score. So ownership
 *   - depends on the name and `count` only: not on the order of the list, nor
 *     on which other checks exist (adding or removing a check moves no other);
 *   - moves only about 1/count of the checks when `count` changes (a plain
 *     `hash mod count` would move almost all of them);
 *   - is the same on every replica and across restarts (the hash below is part
 *     of the contract: FNV-1a 32-bit with the murmur3 finaliser, no seed).
 * A check may pin itself with `shard: N` (checks[].shard) instead.
 */

import type { ShardInfo } from './types';

export interface ShardConfig {
  index: number;
  count: number;
}

/** FNV-1a over the UTF-16 code units, then murmur3's fmix32 to spread the bits. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The shard (0 … count-1) that owns a check name. */
export function shardOf(name: string, count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`shard count must be a whole number ≥ 1, got ${count}`);
  let best = 0;
  let bestScore = -1;
  for (let shard = 0; shard < count; shard++) {
    const score = hash32(`${shard}\u0000${name}`);
    // ties (vanishingly rare) go to the lower shard on every replica alike
    if (score > bestScore) {
      best = shard;
      bestScore = score;
    }
  }
  return best;
}

/** Does this shard own the check? A pin (`checks[].shard`) wins over the hash. */
export function ownsCheck(shard: ShardConfig, name: string, pin?: number): boolean {
  return (pin ?? shardOf(name, shard.count)) === shard.index;
}

/** Environment variables `index: auto` reads, in order: the first that is set is used. */
export const ORDINAL_SOURCES = ['K8S_POD_NAME', 'HOSTNAME'] as const;

/**
 * The StatefulSet ordinal for `shard.index: auto`: the trailing `-N` of the pod
 * name (`checks-monitor-2` → 2), from K8S_POD_NAME (downward API) or else
 * HOSTNAME (which Kubernetes sets to the pod name).
 */
export function ordinalFromEnv(env: NodeJS.ProcessEnv): { index: number; from: string } | { error: string } {
  for (const variable of ORDINAL_SOURCES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    const match = /-(\d+)$/.exec(value);
    if (!match) return { error: `auto needs a pod name ending in -N (a StatefulSet ordinal), but ${variable} is "${value.slice(0, 80)}"` };
    const index = Number(match[1]);
    if (!Number.isSafeInteger(index)) return { error: `auto: the ordinal in ${variable} is too large` };
    return { index, from: variable };
  }
  return { error: `auto needs ${ORDINAL_SOURCES.join(' or ')} set to the pod name (e.g. checks-monitor-0)` };
}

/**
 * The shard this replica is, from the config's `shard` block: a fixed index, or
 * `auto` read from the pod name. `owned` is filled in by the caller.
 */
export function resolveShard(spec: { index: number | 'auto'; count: number }, env: NodeJS.ProcessEnv, total: number): { shard: ShardInfo } | { error: string } {
  let index = spec.index;
  let indexFrom = 'config';
  if (index === 'auto') {
    const ordinal = ordinalFromEnv(env);
    if ('error' in ordinal) return ordinal;
    if (ordinal.index >= spec.count) return { error: `auto: ordinal ${ordinal.index} (from ${ordinal.from}) is not less than shard.count (${spec.count}); more replicas than shards?` };
    ({ index, from: indexFrom } = ordinal);
  }
  return { shard: { index, count: spec.count, indexFrom, owned: 0, total } };
}
