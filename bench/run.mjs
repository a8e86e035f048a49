#!/usr/bin/env node
/**
 * Runs every bench/*.bench.mjs in name order (or those whose name contains one of the
 * argv substrings), each as a child process, then renders bench/RESULTS.md from all
 * bench/results/*.json. Exit status: 1 if any bench failed to measure.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, REPO_DIR } from './lib/result.mjs';

const filters = process.argv.slice(2);
const benches = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

if (benches.length === 0) {
  console.error(`no bench matches ${filters.join(', ') || '(none present)'}`);
  process.exit(1);
}

const failed = [];
for (const f of benches) {
  const t0 = Date.now();
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, [join(BENCH_DIR, f)], { cwd: REPO_DIR, stdio: 'inherit' });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.status !== 0) {
    failed.push(f);
    console.log(`=== ${f} FAILED (status ${r.status ?? r.signal}) after ${secs}s ===`);
  } else {
    console.log(`=== ${f} done in ${secs}s ===`);
  }
}

const rep = spawnSync(process.execPath, [join(BENCH_DIR, 'report.mjs')], { cwd: REPO_DIR, stdio: 'inherit' });
if (failed.length) console.error(`\nbenches that failed to measure: ${failed.join(', ')}`);
process.exit(failed.length || rep.status ? 1 : 0);
