import type { z } from 'zod';
import type { ConfigProblem } from '../errors';
import type { CheckSchema, GroupName, RawCheck, RawConfig } from './schema';
import type { SloConfig } from './slo';

export type { GroupName };
/** A check kind's name (http, tcp…); the probe registry lists the kinds. */
export type CheckKind = string;

export interface PolicyConfig {
  /** ms between the starts of two scheduled runs */
  interval: number;
  /** ms per attempt */
  timeout: number;
  retry: { attempts: number; backoff: { initial: number; max: number }; jitter: boolean };
  breaker: { failures: number; halfOpenAfter: number };
  thresholds: { failure: number; success: number };
}

/** What a check takes from `defaults`: its policy, and its SLO (resolved, or absent). */
export interface DefaultedConfig extends PolicyConfig {
  slo?: SloConfig;
}

type PolicyKeys = 'interval' | 'timeout' | 'retry' | 'breaker' | 'thresholds' | 'slo';
/** A check with every policy field filled in from `defaults`: the fields every kind has. */
export type CheckConfig = Omit<RawCheck, PolicyKeys> & DefaultedConfig;
/** A check of one kind, from that kind's schema, policy filled in. */
export type KindCheckConfig<S extends CheckSchema> = Omit<z.output<S>, PolicyKeys> & DefaultedConfig;

/**
 * What the config loader needs to know of a check kind (the probe kind modules
 * provide it; the registry hands the list to the loader).
 */
export interface CheckKindSpec {
  readonly kind: string;
  /** strict object schema with the common fields and `kind: z.literal(kind)` */
  readonly schema: CheckSchema;
  /** the field naming what is probed: a check whose target needs an unset variable is skipped */
  readonly targetField: 'url' | 'host';
  /** the target a skipped check is validated with (so a typo elsewhere in it is still found) */
  readonly placeholder: string;
  /** values in the check that are secrets (redacted from every output) */
  secrets(check: CheckConfig): string[];
}

/** The resolved `shard` block: which slice of the check list this replica probes. */
export interface ShardInfo {
  index: number;
  count: number;
  /** where index came from: "config", or the variable `index: auto` read (K8S_POD_NAME, HOSTNAME) */
  indexFrom: string;
  /** checks this replica owns (and probes) / checks in the file */
  owned: number;
  total: number;
}

export interface SidecarConfig<C extends CheckConfig = CheckConfig> extends Omit<RawConfig, 'checks' | 'shard'> {
  /** the checks this replica probes (with sharding: only the ones its shard owns) */
  checks: C[];
  /** absent when the config has no `shard` block */
  shard?: ShardInfo;
  /** checks left out because an environment variable they need is unset */
  skipped: { name: string; reason: string }[];
  /** where the config came from (for messages and reloads) */
  source: string;
  /** every string that came from a substitution or is a secret by its key; redaction removes them from output */
  secrets: string[];
  /** valid but probably not meant (config/warnings.ts): `validate` prints them, `run` logs them */
  warnings: ConfigProblem[];
  /**
   * values that came from a `${…}` substitution, at their path in this config
   * (check indexes after skipping and sharding): what /admin/diagnostics shows
   * instead of the value (`text`, as written in the file)
   */
  substitutions?: { path: (string | number)[]; text: string; value: string }[];
}
