/** Writes bench/results/<name>.json in the shape bench/README.md describes. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const REPO_DIR = join(BENCH_DIR, '..');

export function machine() {
  return { cpus: os.cpus().length, node: process.version, cpuModel: os.cpus()[0]?.model ?? '', kernel: os.release() };
}

export function writeResult(name, title, figures, { rounds, extra = {} } = {}) {
  const result = { name, title, date: new Date().toISOString(), machine: machine(), rounds: rounds ?? null, figures, ...extra };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`[${name}] wrote ${file}`);
  for (const f of figures) {
    const base = f.baseline ? ` vs ${f.baseline.value} (${f.baseline.label})` : '';
    console.log(`[${name}]   ${f.label}: ${f.value} ${f.unit} [${f.spread?.join('..')}]${base} ratio=${f.ratio} goal="${f.goal}" met=${f.met}`);
  }
  return result;
}
