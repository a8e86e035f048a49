/**
 * The check kinds. Each kind is one module in probes/ exporting everything
 * about it (config schema, probe, target text, placeholder, secret fields,
 * redaction); this list is the only place that names them. The config union,
 * CHECK_KINDS, secret collection and admin redaction are all built from it, and
 * nothing else switches on kind. Adding a kind: docs/contributing.md.
 */
import { createConfigLoader } from '../config/load';
import type { CheckConfig } from '../config/types';
import type { Redactor } from '../redact';
import { dnsKind } from './dns';
import { grpcKind } from './grpc';
import { httpKind } from './http';
import { postgresKind } from './postgres';
import type { Probe, ProbeContext, ProbeKind } from './probe';
import { redisKind } from './redis';
import { tcpKind } from './tcp';

/** every check kind, in the order messages list them */
export const PROBE_KINDS = [httpKind, tcpKind, redisKind, postgresKind, grpcKind, dnsKind] as const;

export type CheckKindName = (typeof PROBE_KINDS)[number]['kind'];
/** a check of any registered kind (narrow it with `check.kind === 'http'`…) */
export type AnyCheckConfig = Parameters<(typeof PROBE_KINDS)[number]['create']>[0];
export const CHECK_KINDS: readonly CheckKindName[] = PROBE_KINDS.map((k) => k.kind);

const byKind = new Map<string, ProbeKind>(PROBE_KINDS.map((k) => [k.kind, k as unknown as ProbeKind]));

function kindOf(check: CheckConfig): ProbeKind {
  const kind = byKind.get(check.kind);
  if (!kind) throw new Error(`unknown check kind "${check.kind}" (kinds: ${CHECK_KINDS.join(', ')})`);
  return kind;
}

/** The probe of a (validated) check. */
export function createProbe(check: CheckConfig, context: ProbeContext): Probe {
  return kindOf(check).create(check, context);
}

/** The check as admin diagnostics show it: the kind's secret fields masked. */
export function redactCheck(check: CheckConfig, redactor: Redactor): object {
  return kindOf(check).redact(check, redactor);
}

/** The config loader that knows these kinds. */
export const configLoader = createConfigLoader<AnyCheckConfig>(PROBE_KINDS);
export const { parseConfig, loadConfigFile } = configLoader;
export const configJsonSchema = () => configLoader.jsonSchema();
