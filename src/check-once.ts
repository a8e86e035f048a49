/** `health-sidecar check`: every check once, through the same policies, no server. */
import type { SidecarConfig } from './config/types';
import { CheckRunner } from './health/runner';
import { createProbe } from './probes/registry';
import { Redactor } from './redact';

export interface OnceResult {
  name: string;
  kind: string;
  critical: boolean;
  ok: boolean;
  outcome: string;
  latencyMs: number;
  attempts: number;
  message: string;
}

export async function runChecksOnce(config: SidecarConfig, only?: string[]): Promise<OnceResult[]> {
  const redactor = new Redactor(config.secrets);
  const unknown = (only ?? []).filter((name) => !config.checks.some((c) => c.name === name));
  const skipped = unknown.map((name) => config.skipped.find((s) => s.name === name)).filter((s) => s !== undefined);
  if (skipped.length) throw new Error(skipped.map((s) => `check ${s.name} is skipped: ${s.reason}`).join('\n'));
  if (unknown.length) throw new Error(`no check named ${unknown.join(', ')} (checks: ${config.checks.map((c) => c.name).join(', ') || 'none'})`);
  const checks = config.checks.filter((c) => !only?.length || only.includes(c.name));
  return Promise.all(
    checks.map(async (check) => {
      const runner = new CheckRunner(check, createProbe(check, { redactor }), redactor);
      try {
        const result = await runner.run('cli');
        return { name: check.name, kind: check.kind, critical: check.critical, ok: result.ok, outcome: result.outcome, latencyMs: Math.round(result.latencyMs * 10) / 10, attempts: result.attempts, message: result.message };
      } finally {
        await runner.close();
      }
    }),
  );
}

export function formatCheckTable(results: OnceResult[]): string {
  const rows = [['CHECK', 'KIND', 'RESULT', 'LATENCY', 'ATTEMPTS', 'MESSAGE'], ...results.map((r) => [r.name, r.kind, r.ok ? 'ok' : `${r.outcome}${r.critical ? '' : ' (non-critical)'}`, `${r.latencyMs}ms`, String(r.attempts), r.message])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return `${rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}
