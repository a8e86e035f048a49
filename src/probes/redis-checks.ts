/**
 * Deeper Redis verdicts, pure functions of what the server reported:
 * cluster health (CLUSTER INFO), memory pressure (INFO memory), the write
 * round trip's key. The probe (redis.ts) does the I/O on its one connection.
 */
import type { ProbeResult } from './probe';

/** Every Redis Cluster has exactly this many hash slots. */
export const CLUSTER_SLOTS = 16384;

/**
 * CLUSTER INFO → verdict. Healthy = `cluster_state:ok` and every one of the
 * 16384 slots assigned and ok (a slot served by a node that is PFAIL, i.e.
 * not answering for cluster-node-timeout, is not ok: that fails earlier than
 * waiting for the cluster to agree the node is FAIL).
 */
export function evaluateCluster(info: Record<string, string>): ProbeResult {
  const state = info.cluster_state;
  if (state === undefined) return { ok: false, message: 'CLUSTER INFO has no cluster_state (is cluster-enabled set?)' };
  const assigned = Number(info.cluster_slots_assigned ?? 0);
  const ok = Number(info.cluster_slots_ok ?? 0);
  const pfail = Number(info.cluster_slots_pfail ?? 0);
  const fail = Number(info.cluster_slots_fail ?? 0);
  const nodes = `${info.cluster_size ?? '?'} master(s) serving slots, ${info.cluster_known_nodes ?? '?'} node(s) known`;
  if (state === 'ok' && assigned === CLUSTER_SLOTS && ok === CLUSTER_SLOTS) {
    return { ok: true, message: `cluster_state ok, ${ok}/${CLUSTER_SLOTS} slots ok, ${nodes}` };
  }
  const slots = [`${assigned}/${CLUSTER_SLOTS} slots assigned`, `${ok} ok`];
  if (pfail) slots.push(`${pfail} pfail`);
  if (fail) slots.push(`${fail} fail`);
  return { ok: false, message: `cluster_state ${state}, ${slots.join(', ')}, ${nodes}` };
}

/** 1536 → "1.5KiB", 20971520 → "20MiB" */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = value >= 10 || unit === 0 ? String(Math.round(value)) : value.toFixed(1);
  return `${text}${units[unit]}`;
}

/**
 * INFO memory → verdict for `maxMemoryRatio`: used_memory / maxmemory must
 * not exceed the ratio. Without a maxmemory (0: no limit) there is no ratio;
 * the run succeeds and says so (the limit is then the machine's).
 */
export function evaluateMemory(info: Record<string, string>, maxRatio: number): ProbeResult {
  const used = Number(info.used_memory);
  const limit = Number(info.maxmemory);
  if (!Number.isFinite(used)) return { ok: false, message: 'INFO memory has no used_memory' };
  if (!Number.isFinite(limit) || limit <= 0) return { ok: true, message: `memory ${formatBytes(used)} used, no maxmemory set (maxMemoryRatio not applicable)` };
  const ratio = used / limit;
  const text = `memory ${Math.round(ratio * 100)}% of maxmemory (${formatBytes(used)} of ${formatBytes(limit)})`;
  if (ratio > maxRatio) return { ok: false, message: `${text}, more than maxMemoryRatio ${maxRatio}` };
  return { ok: true, message: text };
}

/**
 * The key a `roundTrip` writes: one per pod (host name) and check, so two
 * pods or two checks never share it: `otel-health-sidecar:roundtrip:<host>:<check>`.
 */
export function roundTripKey(hostname: string, check: string): string {
  return `otel-health-sidecar:roundtrip:${hostname}:${check}`;
}

/** Seconds the round-trip key lives after the last run wrote it. */
export const ROUND_TRIP_TTL_SECONDS = 60;
