import type { RawCheck, RawConfig, GroupName } from './schema';

export type { GroupName };
export type CheckKind = RawCheck['kind'];

export interface PolicyConfig {
  /** ms between the starts of two scheduled runs */
  interval: number;
  /** ms per attempt */
  timeout: number;
  retry: { attempts: number; backoff: { initial: number; max: number }; jitter: boolean };
  breaker: { failures: number; halfOpenAfter: number };
  thresholds: { failure: number; success: number };
}

/** A check with every policy field filled in from `defaults`. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type CheckConfig = DistributiveOmit<RawCheck, 'interval' | 'timeout' | 'retry' | 'breaker' | 'thresholds'> & PolicyConfig;
export type CheckConfigOf<K extends CheckKind> = Extract<CheckConfig, { kind: K }>;

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

export interface SidecarConfig extends Omit<RawConfig, 'checks' | 'shard'> {
  /** the checks this replica probes (with sharding: only the ones its shard owns) */
  checks: CheckConfig[];
  /** absent when the config has no `shard` block */
  shard?: ShardInfo;
  /** checks left out because an environment variable they need is unset */
  skipped: { name: string; reason: string }[];
  /** where the config came from (for messages and reloads) */
  source: string;
  /** every string that came from a substitution or is a secret by its key; redaction removes them from output */
  secrets: string[];
}
