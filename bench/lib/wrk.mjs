/** Runs wrk and parses its output (`--latency` percentiles). */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { taskset } from './proc.mjs';

const delayScripts = new Map();
/** A wrk Lua script whose delay() pauses each connection `ms` before its next request (a crude rate limit). */
export function delayScript(ms) {
  if (!delayScripts.has(ms)) {
    const file = join(mkdtempSync(join(tmpdir(), 'bench-wrk-')), `delay-${ms}.lua`);
    writeFileSync(file, `function delay()\n  return ${Number(ms)}\nend\n`);
    delayScripts.set(ms, file);
  }
  return delayScripts.get(ms);
}

function toMs(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return { us: v / 1000, ms: v, s: v * 1000, m: v * 60_000 }[m[2]];
}

function num(s) {
  const m = /^([\d.]+)([kMG]?)$/.exec(s.trim());
  if (!m) return NaN;
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2]]);
}

export function parseWrk(out) {
  const res = { requests: NaN, rps: NaN, durationS: NaN, latency: {}, errors: { connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 }, raw: out };
  let m = /(\d+) requests in ([\d.]+\w+),/.exec(out);
  if (m) {
    res.requests = Number(m[1]);
    res.durationS = toMs(m[2]) / 1000;
  }
  m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (m) res.rps = Number(m[1]);
  m = /Latency\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  if (m) {
    res.latency.avg = toMs(m[1]);
    res.latency.max = toMs(m[3]);
  }
  for (const p of ['50', '75', '90', '99']) {
    const r = new RegExp(`^\\s+${p}(?:\\.0+)?%\\s+(\\S+)`, 'm').exec(out);
    if (r) res.latency[`p${p}`] = toMs(r[1]);
  }
  m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (m) Object.assign(res.errors, { connect: +m[1], read: +m[2], write: +m[3], timeout: +m[4] });
  m = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (m) res.errors.non2xx = Number(m[1]);
  void num;
  return res;
}

/**
 * `delayMs` (integer ms) throttles each connection: rate ≲ connections × 1000 / delayMs.
 * wrk -t threads -c connections -d duration [--latency] [--timeout] url, optionally pinned
 * with taskset. Resolves with the parsed result; rejects if wrk fails.
 */
export function runWrk(url, { threads = 1, connections = 50, duration = '5s', cpu, latency = true, timeout = '2s', script, delayMs } = {}) {
  if (delayMs && !script) script = delayScript(delayMs);
  const args = ['-t', String(threads), '-c', String(connections), '-d', String(duration), '--timeout', String(timeout)];
  if (latency) args.push('--latency');
  if (script) args.push('-s', script);
  args.push(url);
  const [cmd, argv] = taskset(cpu, 'wrk', args);
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
      const res = parseWrk(stdout);
      if (!Number.isFinite(res.rps)) return reject(new Error(`cannot parse wrk output:\n${stdout}\n${stderr}`));
      resolve(res);
    });
  });
}
