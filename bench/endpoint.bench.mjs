#!/usr/bin/env node
/**
 * Bench 1 — /readyz throughput and CPU per request.
 *
 * Subject: the shipped sidecar (scripts/bundle.mjs's bundle, built here, run with the
 * image's node flags and ENV) with 3 checks (HTTP app, real Redis 127.0.0.1:6379,
 * real PostgreSQL), telemetry as shipped, interval 2s. The bare and terminus-style
 * servers run with the same node flags and ENV.
 * Baselines, measured in the same run with rounds interleaved (order rotates per round):
 *  - bare:     node:http answering 200 "ok"
 *  - terminus: node:http whose /readyz awaits an ioredis PING to the same Redis
 * Every server is pinned to CPU 0, wrk to CPU 1 (`wrk -t1 -c50 -d5s --latency`).
 * CPU per request = (utime+stime of the server process during the wrk run) / requests.
 * Before each measurement we wait (up to 20 s) for other processes to go quiet, and we
 * record how much CPU they used during it (the machine is shared).
 * CPU per request is also measured at a fixed ~5k req/s (12 connections, 2 ms wrk delay())
 * for the sidecar and the bare server, and for /readyz on the kubelet listener of a second
 * sidecar that runs it in its own thread (server.probeListener, as the deploy kit's
 * `--probe-port 9465`): the port the kubelet asks in a pod of the deploy kit.
 * Also a context figure: the sidecar with OTEL_SDK_DISABLED=true (no goal), to show
 * what telemetry costs on the request path.
 * And the before/after of recording http.server.request.duration on the fast path
 * (issue 21.7): the pre-bound accumulator as shipped vs the SDK's histogram.record()
 * with attributes, CPU per record in this process (bench/lib/record-cost.mjs).
 * `BENCH_ENDPOINT_ONLY=record-cost` measures only that and replaces its figures in
 * bench/results/endpoint.json, keeping the others.
 */
import os from 'node:os';
import { threeChecksConfig } from './lib/configs.mjs';
import { cpuTimeOf, loadMeter, sleep, waitQuiet } from './lib/proc.mjs';
import { writeResult } from './lib/result.mjs';
import { startBareServer, startTerminusServer } from './lib/servers.mjs';
import { startHttpApp } from './lib/services.mjs';
import { freePort, spawnSidecar } from './lib/sidecar.mjs';
import { figure, median, round } from './lib/stats.mjs';
import { REDIS_URL } from './lib/configs.mjs';
import { runWrk } from './lib/wrk.mjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { measureRecordCost } from './lib/record-cost.mjs';
import { buildShippedBundle, shippedEnv, shippedNodeFlags } from './lib/probe-shipped.mjs';
import { RESULTS_DIR } from './lib/result.mjs';

/** http.server.request.duration on the fast path: pre-bound (after) vs SDK record() (before), per request */
function recordCostFigures(readyzCpuUs) {
  const cost = measureRecordCost({ rounds: ROUNDS });
  const sdk = median(cost.sdk);
  return [
    figure({
      id: 'readyz-record-cost',
      label: 'http.server.request.duration: CPU per /readyz request to record it, pre-bound (as shipped)',
      unit: 'µs',
      samples: cost.prebound,
      baselineSamples: cost.sdk,
      baselineLabel: 'before: SDK histogram.record(seconds, {method, route, status}) per request',
      goal: '≤ 0.1× the SDK record',
      check: (_v, ratio) => ratio !== null && ratio <= 0.1,
      digits: 3,
      note: `${cost.records.toLocaleString('en-US')} records per round, ${cost.rounds} rounds interleaved, in the bench process; loop included (an empty loop: ${round(median(cost.empty), 3)} µs). The SDK record would add ${round(sdk, 2)} µs to each /readyz request${Number.isFinite(readyzCpuUs) ? `, ${round((sdk / readyzCpuUs) * 100, 1)} % of the sidecar's ${round(readyzCpuUs, 2)} µs CPU per request above` : ''}.`,
    }),
  ];
}


const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const DURATION = process.env.BENCH_DURATION || '5s';
const CONNECTIONS = 50;
const QUIET_TIMEOUT_MS = Number(process.env.BENCH_QUIET_TIMEOUT_MS || 20_000);
const multi = os.cpus().length > 1;
const SERVER_CPU = multi ? 0 : undefined;
const WRK_CPU = multi ? 1 : undefined;

if (process.env.BENCH_ENDPOINT_ONLY === 'record-cost') {
  const previous = JSON.parse(readFileSync(join(RESULTS_DIR, 'endpoint.json'), 'utf8'));
  const readyz = previous.figures.find((f) => f.id === 'readyz-cpu-per-request')?.value;
  const added = recordCostFigures(readyz).map((f) => ({ ...f, note: `${f.note} Measured ${new Date().toISOString()} on its own (BENCH_ENDPOINT_ONLY=record-cost, ${os.cpus()[0]?.model ?? 'unknown CPU'}); the other figures are from the run of ${previous.date}.` }));
  const figures = [...previous.figures.filter((f) => f.id !== 'readyz-record-cost'), ...added];
  // the file keeps the date of the run that measured the other figures
  writeResult('endpoint', previous.title, figures, { rounds: previous.rounds, extra: { date: previous.date, machine: previous.machine, params: previous.params, foreignCpus: previous.foreignCpus } });
  process.exit(0);
}

const app = await startHttpApp();
const BUNDLE = buildShippedBundle();
const shipped = { nodeArgs: shippedNodeFlags(), env: shippedEnv() };
const subjects = {
  bare: await startBareServer({ cpu: SERVER_CPU, ...shipped }),
  sidecar: await spawnSidecar(threeChecksConfig({ appUrl: app.url }), { cpu: SERVER_CPU, ...shipped, cli: BUNDLE.cli }),
  terminus: await startTerminusServer(REDIS_URL, { cpu: SERVER_CPU, ...shipped }),
  sidecarNoOtel: await spawnSidecar(threeChecksConfig({ appUrl: app.url }), { cpu: SERVER_CPU, nodeArgs: shipped.nodeArgs, env: { ...shipped.env, OTEL_SDK_DISABLED: 'true' }, cli: BUNDLE.cli }),
};
// as the deploy kit runs it (`--probe-port 9465`): the kubelet's /readyz goes to the kubelet listener, a thread of its own;
// measured at the fixed rate only (its own subject, so the saturation rounds above are unchanged)
const KUBELET_PORT = await freePort();
const kubelet = await spawnSidecar(threeChecksConfig({ appUrl: app.url }).replace('drainDelay: 0s }', `drainDelay: 0s, probeListener: { port: ${KUBELET_PORT}, thread: true } }`), { cpu: SERVER_CPU, ...shipped, cli: BUNDLE.cli });
subjects.kubelet = { ...kubelet, url: `http://127.0.0.1:${KUBELET_PORT}` };
const SATURATION = ['bare', 'sidecar', 'terminus', 'sidecarNoOtel'];
const samples = Object.fromEntries(Object.keys(subjects).map((k) => [k, { rps: [], cpuUs: [], p99: [], errors: 0 }]));
const FIXED = { connections: 12, delayMs: 2 }; // ~5k req/s
const fixed = { bare: { rps: [], cpuUs: [] }, sidecar: { rps: [], cpuUs: [] }, kubelet: { rps: [], cpuUs: [] } };

const allPids = () => Object.values(subjects).map((s) => s.pid);
const foreign = [];

async function measure(name, duration, record = true, wrkLoad = { connections: CONNECTIONS }) {
  const s = subjects[name];
  if (record) await waitQuiet({ pids: allPids(), timeoutMs: QUIET_TIMEOUT_MS });
  const meter = loadMeter(allPids());
  meter.start();
  const c0 = cpuTimeOf(s.pid);
  const w = await runWrk(`${s.url}/readyz`, { threads: 1, ...wrkLoad, duration, cpu: WRK_CPU });
  const cpu = cpuTimeOf(s.pid) - c0;
  const load = meter.end();
  if (record) foreign.push(load.foreignCpus);
  return { rps: w.rps, cpuUs: (cpu / w.requests) * 1e6, p99: w.latency.p99, foreign: load.foreignCpus, errors: w.errors.non2xx + w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout };
}

try {
  // warm-up (JIT, connection setup), not recorded
  for (const name of Object.keys(subjects)) await measure(name, '2s', false);
  const names = SATURATION;
  for (let r = 0; r < ROUNDS; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const name of order) {
      const m = await measure(name, DURATION);
      const s = samples[name];
      s.rps.push(m.rps);
      s.cpuUs.push(m.cpuUs);
      s.p99.push(m.p99);
      s.errors += m.errors;
      console.log(`[endpoint] round ${r + 1} ${name}: ${round(m.rps, 0)} req/s, ${round(m.cpuUs, 2)} µs CPU/req, p99 ${m.p99} ms, errors ${m.errors}, other processes ${m.foreign.toFixed(2)} CPUs`);
      await sleep(300);
    }
    const fixedNames = ['bare', 'sidecar', 'kubelet'];
    for (const name of fixedNames.map((_, i) => fixedNames[(i + r) % fixedNames.length])) {
      const m = await measure(name, DURATION, true, FIXED);
      fixed[name].rps.push(m.rps);
      fixed[name].cpuUs.push(m.cpuUs);
      console.log(`[endpoint] round ${r + 1} ${name} at a fixed rate: ${round(m.rps, 0)} req/s, ${round(m.cpuUs, 2)} µs CPU/req, errors ${m.errors}, other processes ${m.foreign.toFixed(2)} CPUs`);
    }
  }
} finally {
  for (const s of Object.values(subjects)) await s.stop();
  await app.stop();
}

const loadNote = `Other processes on the machine used ${round(median(foreign), 2)} CPUs (median; max ${round(Math.max(...foreign), 2)}) of ${os.cpus().length} during the measurements (each measurement first waits up to ${QUIET_TIMEOUT_MS / 1000} s for the machine to be quiet).`;
const params = `the shipped bundle; every server with node ${shipped.nodeArgs.join(' ') || '(default flags)'} and ${Object.entries(shipped.env).map(([k, v]) => `${k}=${v}`).join(' ')}; wrk -t1 -c${CONNECTIONS} -d${DURATION} --latency, server pinned to CPU ${SERVER_CPU ?? '-'}, wrk to CPU ${WRK_CPU ?? '-'}, ${ROUNDS} rounds interleaved`;
const err = (n) => (samples[n].errors ? ` ${samples[n].errors} non-2xx/socket errors!` : ' 0 errors.');
/** CPU per /readyz request of `name` at the fixed rate, against the bare server at the same rate */
const fixedRateFigure = (id, name, what, note) =>
  figure({
    id,
    label: `/readyz CPU per request at a fixed ~${round(median(fixed[name].rps), 0)} req/s ${what}`,
    unit: 'µs',
    samples: fixed[name].cpuUs,
    baselineSamples: fixed.bare.cpuUs,
    baselineLabel: `bare node:http 'ok' at ~${round(median(fixed.bare.rps), 0)} req/s`,
    goal: '≤ 1.1× bare',
    check: (_v, ratio) => ratio <= 1.1,
    digits: 2,
    note,
  });
const figures = [
  figure({
    id: 'readyz-rps-vs-bare',
    label: '/readyz throughput, sidecar with 3 checks',
    unit: 'req/s',
    samples: samples.sidecar.rps,
    baselineSamples: samples.bare.rps,
    baselineLabel: "bare node:http answering 'ok'",
    goal: '≥ 0.9× bare',
    check: (_v, ratio) => ratio >= 0.9,
    digits: 0,
    note: `${params}. Sidecar:${err('sidecar')} Bare:${err('bare')} ${loadNote}`,
  }),
  figure({
    id: 'readyz-cpu-per-request',
    label: '/readyz CPU per request, sidecar with 3 checks',
    unit: 'µs',
    samples: samples.sidecar.cpuUs,
    baselineSamples: samples.bare.cpuUs,
    baselineLabel: "bare node:http answering 'ok'",
    goal: '≤ 1.1× bare',
    check: (_v, ratio) => ratio <= 1.1,
    digits: 2,
    note: 'At saturation (same runs as the throughput figure): utime+stime of the server process (all threads, incl. its probes every 2s) during the wrk run, divided by the requests wrk completed.',
  }),
  fixedRateFigure('readyz-cpu-per-request-fixed-rate', 'sidecar', 'sidecar with 3 checks', `Same rate for both (wrk -c${FIXED.connections} with a ${FIXED.delayMs} ms delay() per connection), so neither gets the batching discount of saturation. Achieved rates: sidecar ${fixed.sidecar.rps.map((x) => round(x, 0)).join(', ')}; bare ${fixed.bare.rps.map((x) => round(x, 0)).join(', ')} req/s.`),
  fixedRateFigure(
    'readyz-cpu-per-request-fixed-rate-kubelet-listener',
    'kubelet',
    'on the kubelet listener (own thread, as the deploy kit runs it: --probe-port), sidecar with 3 checks',
    `The same 3-check sidecar with server.probeListener {thread: true} (what \`run --probe-port\` sets), /readyz asked on that port; CPU = utime+stime of the whole process (all threads: the listener's thread, the main thread's probes and the state it hands the thread). Same rate and rounds as the row above. Achieved rates: ${fixed.kubelet.rps.map((x) => round(x, 0)).join(', ')} req/s.`,
  ),
  figure({
    id: 'readyz-rps-vs-terminus',
    label: '/readyz throughput vs terminus-style (Redis PING per request)',
    unit: 'req/s',
    samples: samples.sidecar.rps,
    baselineSamples: samples.terminus.rps,
    baselineLabel: 'node:http + ioredis PING per /readyz request',
    goal: '≥ 2× terminus-style',
    check: (_v, ratio) => ratio >= 2,
    digits: 0,
    note: `Same wrk parameters; the terminus-style server uses one ioredis connection (auto-pipelining of concurrent PINGs by ioredis's command queue), Redis unpinned. Terminus-style:${err('terminus')}`,
  }),
  figure({
    id: 'readyz-p99',
    label: '/readyz p99 latency at saturation (50 connections), sidecar',
    unit: 'ms',
    samples: samples.sidecar.p99,
    baselineSamples: samples.bare.p99,
    baselineLabel: "bare node:http answering 'ok'",
    goal: '',
    digits: 2,
    note: 'Context only: closed-loop saturation latency (wrk --latency); see the blackhole bench for p99 at a moderate rate.',
  }),
  figure({
    id: 'readyz-rps-no-otel',
    label: '/readyz throughput, sidecar with OTEL_SDK_DISABLED=true',
    unit: 'req/s',
    samples: samples.sidecarNoOtel.rps,
    baselineSamples: samples.bare.rps,
    baselineLabel: "bare node:http answering 'ok'",
    goal: '',
    digits: 0,
    note: `Context (no goal): how much of the gap the OpenTelemetry SDK accounts for.${err('sidecarNoOtel')}`,
  }),
  figure({
    id: 'readyz-cpu-no-otel',
    label: '/readyz CPU per request, sidecar with OTEL_SDK_DISABLED=true',
    unit: 'µs',
    samples: samples.sidecarNoOtel.cpuUs,
    baselineSamples: samples.bare.cpuUs,
    baselineLabel: "bare node:http answering 'ok'",
    goal: '',
    digits: 2,
    note: 'Context (no goal).',
  }),
];
figures.push(...recordCostFigures(median(samples.sidecar.cpuUs)));
writeResult('endpoint', '/readyz throughput and CPU per request vs bare node:http and a terminus-style server', figures, { rounds: ROUNDS, extra: { params, foreignCpus: foreign } });
