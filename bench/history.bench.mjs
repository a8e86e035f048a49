#!/usr/bin/env node
/**
 * Bench: memory of the uptime history (src/health/history.ts) with 1,000 checks.
 *
 * Each round starts a fresh node process (--expose-gc) that loads the COMPILED
 * history module, forces a GC and reads process.memoryUsage(), then records
 * 25 simulated hours of runs (one a minute) for each of 1,000 checks — so
 * every check has a full minute ring and a rolled-up hour — forces a GC and
 * reads it again. The difference (heapUsed + arrayBuffers) divided by 1,000 is
 * the measured cost of a check's history, objects and Map entry included; the
 * typed arrays' byteLength is the designed figure. Goal: ≤ 32 KiB a check.
 *
 * Context figures (no goal; times are only indicative on a shared machine):
 * time to record one run, and time to read a 30-day window + the SLO report
 * (windows 30d, 5m, 1h, 6h, 3d) for all 1,000 checks — what one /metrics
 * scrape or /health/stats answer costs.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { figure, round } from './lib/stats.mjs';
import { REPO_DIR, writeResult } from './lib/result.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CHECKS = 1000;

const CHILD = `
const { History, HISTORY_WINDOWS, DAY_MS } = require(${JSON.stringify(join(REPO_DIR, 'dist/health/history.js'))});
const { sloReport } = require(${JSON.stringify(join(REPO_DIR, 'dist/health/slo.js'))});
const CHECKS = ${CHECKS};
const START = Date.parse('2030-01-01T00:00:00Z');
let now = START;
const names = Array.from({ length: CHECKS }, (_, i) => 'check-' + i);
const mem = () => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
const before = mem();
const history = new History(() => now);
const minutes = 25 * 60;
const t0 = process.hrtime.bigint();
for (let m = 0; m < minutes; m++) {
  now = START + m * 60_000 + 30_000;
  for (let i = 0; i < CHECKS; i++) history.record(names[i], { finishedAt: now, outcome: (m + i) % 97 === 0 ? 'failure' : 'success', latencyMs: 1 + (i % 50) });
}
const recordNs = Number(process.hrtime.bigint() - t0) / (minutes * CHECKS);
const after = mem();
const q0 = process.hrtime.bigint();
let sink = 0;
for (const name of names) sink += sloReport({ objective: 0.999, windowMs: 30 * DAY_MS }, '30d', (ms) => history.window(name, ms)).runs;
const queryMs = Number(process.hrtime.bigint() - q0) / 1e6;
console.log(JSON.stringify({ perCheckBytes: (after - before) / CHECKS, byteLength: history.byteLength / CHECKS, recordNs, queryMs, sink }));
`;

const measured = [];
const designed = [];
const record = [];
const query = [];
for (let r = 0; r < ROUNDS; r++) {
  const child = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD], { encoding: 'utf8', cwd: REPO_DIR });
  if (child.status !== 0) {
    console.error(child.stderr);
    process.exit(1);
  }
  const out = JSON.parse(child.stdout.trim().split('\n').pop());
  measured.push(out.perCheckBytes);
  designed.push(out.byteLength);
  record.push(out.recordNs);
  query.push(out.queryMs);
  console.log(`[history] round ${r + 1}: ${round(out.perCheckBytes, 0)} B/check measured, ${out.byteLength} B/check typed arrays, ${round(out.recordNs, 0)} ns/record, ${round(out.queryMs, 1)} ms for ${CHECKS} SLO reports`);
}

const KiB = 1024;
writeResult('history', `Uptime history memory with ${CHECKS} checks`, [
  figure({ id: 'bytes-per-check-designed', label: 'history per check (typed arrays byteLength)', unit: 'bytes', samples: designed, goal: '≤ 32 KiB', check: (v) => v <= 32 * KiB, digits: 0, note: '1,440 minute slots × 14 B + 720 hour slots × 16 B' }),
  figure({ id: 'bytes-per-check-measured', label: `history per check, measured with ${CHECKS} checks (heapUsed + arrayBuffers after GC, ÷ ${CHECKS})`, unit: 'bytes', samples: measured, goal: '≤ 32 KiB', check: (v) => v <= 32 * KiB, digits: 0, note: 'fresh process per round; 25 simulated hours of one run a minute per check, so every ring is in use' }),
  figure({ id: 'total-1000', label: `history of ${CHECKS} checks, measured`, unit: 'MiB', samples: measured.map((b) => (b * CHECKS) / (1024 * 1024)), goal: '', digits: 2 }),
  figure({ id: 'record-ns', label: 'record one run (context)', unit: 'ns', samples: record, goal: '', digits: 0, note: 'includes roll-ups and slot clearing; indicative only on a shared machine' }),
  figure({ id: 'slo-reports-ms', label: `SLO report (30d, 5m, 1h, 6h, 3d windows) for all ${CHECKS} checks (context)`, unit: 'ms', samples: query, goal: '', digits: 1, note: 'what one /metrics scrape or /health/stats answer spends on history; indicative only' }),
], { rounds: ROUNDS });
