/** Process helpers: CPU time and RSS from /proc, taskset pinning, child node processes. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck = 100; // sysconf(_SC_CLK_TCK) is 100 on Linux x86_64/arm64

/** CPU seconds (user + system, all threads) the process has used so far. */
export function cpuTimeOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may contain spaces/parens: fields start after the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3); utime = field 14, stime = field 15
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clkTck;
}

/** Resident set size in bytes. */
export function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** [cmd, args] prefixed with `taskset -c cpu` when cpu is given (number or "0,1"). */
export function taskset(cpu, cmd, args) {
  if (cpu === undefined || cpu === null) return [cmd, args];
  return ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/**
 * Run a node child: `file` is a path, or `{ code }` for an inline ES module.
 * Returns the ChildProcess (its pid is node's own pid: taskset execs node).
 */
export function spawnNode(file, args = [], { cpu, env, stdio = ['ignore', 'pipe', 'inherit'], nodeArgs = [] } = {}) {
  const nodeArgv = typeof file === 'string' ? [...nodeArgs, file, ...args] : [...nodeArgs, '--input-type=module', '-e', file.code, ...args];
  const [cmd, argv] = taskset(cpu, process.execPath, nodeArgv);
  return spawn(cmd, argv, { stdio, env: { ...process.env, ...env } });
}

/** Resolve with the first line the child prints on stdout (JSON-parsed when possible). */
export function firstLine(child, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('child printed nothing')), timeoutMs);
    const onData = (chunk) => {
      buf += chunk;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      const line = buf.slice(0, i);
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve(line);
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before printing`));
    });
  });
}

export function stopChild(child, signal = 'SIGTERM', graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Busy CPU seconds of the whole machine so far (all CPUs; /proc/stat minus idle and iowait). */
export function machineBusy() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already in user). irq and
  // softirq are left out: loopback networking of our own load lands there.
  const busy = v[0] + v[1] + v[2] + (v[7] || 0);
  return busy / clkTck;
}

/** CPU seconds of this process plus its reaped children (wrk runs via execFile and is reaped). */
function selfAndReapedChildren() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / clkTck;
}

/**
 * Measures how much CPU *other* processes used while we measured: start() before a
 * round, end() after → { foreignCpus (average cores busy with processes that are not
 * ours), busyCpus, seconds }. "Ours" = the given pids + this process + reaped children (wrk).
 */
export function loadMeter(pids = []) {
  let t0, b0, o0;
  const ours = () => pids.reduce((s, pid) => s + cpuTimeOf(pid), 0) + selfAndReapedChildren();
  return {
    start() {
      t0 = performance.now();
      b0 = machineBusy();
      o0 = ours();
    },
    end() {
      const secs = (performance.now() - t0) / 1000;
      const busy = machineBusy() - b0;
      const own = ours() - o0;
      return { seconds: secs, busyCpus: busy / secs, foreignCpus: Math.max(0, busy - own) / secs };
    },
  };
}

/**
 * Wait (best effort) until the machine is quiet: less than `maxBusyCpus` cores busy over
 * a `sampleMs` sample, excluding `pids` (our own idle servers). Gives up after `timeoutMs`.
 * Returns the last sample's busy cores (other processes).
 */
export async function waitQuiet({ pids = [], maxBusyCpus = 0.3, sampleMs = 500, timeoutMs = 20_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = NaN;
  for (;;) {
    const m = loadMeter(pids);
    m.start();
    await sleep(sampleMs);
    last = m.end().foreignCpus;
    if (last < maxBusyCpus || Date.now() > deadline) return last;
  }
}
