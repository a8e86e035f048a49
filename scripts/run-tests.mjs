#!/usr/bin/env node
// `npm test` runner: finds every test/**/*.test.ts file and runs them all in ONE
// `node --test` process so the final summary (ℹ tests / ℹ pass / ℹ fail) covers
// every file.
//
// Usage: node scripts/run-tests.mjs [substring ...]
//   With arguments, only files whose path contains at least one of the given
//   substrings are run (e.g. `node scripts/run-tests.mjs probes`).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'test');

/** Recursively collect *.test.ts files below `dir` (paths relative to root, '/' separated). */
function findTestFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err && err.code === 'ENOENT') return [];
    throw err;
  }
  const out = [];
  for (const entry of entries) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...findTestFiles(full));
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      out.push(relative(root, full).split(sep).join('/'));
    }
  }
  return out;
}

const filters = process.argv.slice(2).filter((a) => a.length > 0);
const all = findTestFiles(testDir).sort();
const files = filters.length === 0 ? all : all.filter((f) => filters.some((s) => f.includes(s)));

if (files.length === 0) {
  const why =
    filters.length === 0
      ? `no test files matching test/**/*.test.ts found under ${testDir}`
      : `no test files match filter(s) ${filters.map((f) => JSON.stringify(f)).join(', ')} ` +
        `(${all.length} test file(s) found in total)`;
  console.error(`run-tests: ${why}`);
  process.exit(1);
}

console.log(`running ${files.length} test files`);

const env = { ...process.env };
if (!env.NODE_ENV) env.NODE_ENV = 'test';

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { cwd: root, env, stdio: 'inherit' },
);

// Forward termination signals so Ctrl-C / CI cancellation stops the test process too.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  });
}

child.on('error', (err) => {
  console.error(`run-tests: failed to start node --test: ${err.message}`);
  process.exit(1);
});

child.on('exit', (code, signal) => {
  if (signal) {
    console.error(`run-tests: test process killed by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
