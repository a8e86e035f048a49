#!/usr/bin/env node
/**
 * Allocation per probe, A/B: scavenges and CPU-s per 10k probes of the shipped
 * bundle (16 checks of one kind every 25 ms, 1 attempt, timeout 25 ms, traces over
 * OTLP/HTTP to a local receiver, the image's node flags plus --trace-gc).
 *
 *   node bench/probe-gc.mjs <kind: http|redis> <rounds> <cli.js> [<cli.js> …]
 *
 * Each round runs every given bundle once, in turn (alternated), and prints one
 * line per bundle: probes, scavenges, mark-compacts, CPU-s in the window.
 * OTEL_TRACES_EXPORTER=none in the environment turns traces off.
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { cpuTimeOf, sleep } from './lib/proc.mjs';
import { httpGet, spawnSidecar } from './lib/sidecar.mjs';
import { startHttpApp, startRedisServer } from './lib/services.mjs';
import { promSum, shippedEnv, shippedNodeFlags } from './lib/probe-shipped.mjs';

const [kind = 'http', roundsArg = '3', ...clis] = process.argv.slice(2);
const ROUNDS = Number(roundsArg);
const WARMUP_MS = 3000;
const WINDOW_MS = Number(process.env.WINDOW_MS ?? 10_000);

const otlp = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end());
});
await new Promise((r) => otlp.listen(0, '127.0.0.1', r));
const app = kind === 'http' ? await startHttpApp() : undefined;
const redis = kind === 'redis' ? await startRedisServer() : undefined;
const url = app?.url ?? redis.url;

const config = () => `
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s, showDetails: always }
log: { level: warn }
telemetry: { serviceName: bench-probe-gc }
defaults: { interval: 25ms, timeout: 25ms, retry: { attempts: 1 } }
checks:
${Array.from({ length: 16 }, (_, i) => `  - { name: ${kind}${i}, kind: ${kind}, url: "${url}", groups: [ready] }`).join('\n')}
`;

/** GC counts so far, and the bytes allocated between GCs (heap before a GC minus heap after the previous one, summed) */
const gcCounts = (file) => {
  const text = readFileSync(file, 'utf8');
  let allocatedMB = 0;
  let after;
  let pauseMs = 0;
  for (const m of text.matchAll(/: (?:Scavenge|Mark-Compact|Mark-Compact \(reduce\)|Minor Mark-Compact)[^\n]*? ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms/g)) {
    if (after !== undefined) allocatedMB += Math.max(0, Number(m[1]) - after);
    after = Number(m[2]);
    pauseMs += Number(m[3]);
  }
  return { scavenges: (text.match(/Scavenge/g) ?? []).length, marks: (text.match(/Mark-Compact/g) ?? []).length, allocatedMB, pauseMs };
};
/** [successful attempts, all attempts] */
const probesOf = async (s) => {
  const text = (await httpGet(`${s.url}/metrics`, 5000)).body;
  return [promSum(text, 'healthcheck_probe_duration_seconds_count', 'outcome="success"'), promSum(text, 'healthcheck_probe_duration_seconds_count')];
};

const env = { ...shippedEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlp.address().port}` };
for (let round = 0; round < ROUNDS; round++) {
  for (const cli of clis) {
    const s = await spawnSidecar(config(), { env, nodeArgs: [...shippedNodeFlags(), '--trace-gc'], readyPath: null, cli });
    try {
      await sleep(WARMUP_MS);
      const p0 = await probesOf(s);
      const g0 = gcCounts(s.logFile);
      const c0 = cpuTimeOf(s.pid);
      await sleep(WINDOW_MS);
      const c1 = cpuTimeOf(s.pid);
      const g1 = gcCounts(s.logFile);
      const p1 = await probesOf(s);
      // per attempt, whatever its outcome; a round where under 95 % succeeded (a loaded machine: 25 ms timeouts) is flagged
      const probes = p1[1] - p0[1];
      const ok = p1[0] - p0[0];
      const per10k = (x) => Number(((x / probes) * 10_000).toFixed(2));
      console.log(
        JSON.stringify({
          round,
          cli,
          probes,
          okShare: Number((ok / probes).toFixed(3)),
          scavengesPer10k: per10k(g1.scavenges - g0.scavenges),
          gcPauseMsPer10k: per10k(g1.pauseMs - g0.pauseMs),
          kbPerProbe: Number((((g1.allocatedMB - g0.allocatedMB) * 1024) / probes).toFixed(1)),
          marks: g1.marks - g0.marks,
          cpuPer10k: per10k(c1 - c0),
          ...(ok < 0.95 * probes ? { flagged: 'under 95 % of the attempts succeeded' } : {}),
        }),
      );
    } finally {
      await s.stop();
    }
  }
}
otlp.close();
app?.stop?.();
await redis?.stop?.();
process.exit(0);
