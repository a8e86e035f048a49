/**
 * What recording `http.server.request.duration` costs the kubelet fast path,
 * before and after pre-binding (issue 21.7), in this process with rounds
 * interleaved:
 *  - after (as shipped): the accumulator the fast path binds once per
 *    path × method × answer (dist/telemetry/server-metrics.js), `record(seconds)`;
 *  - before: the SDK histogram, `histogram.record(seconds, attributes)` with the
 *    attribute object built per request as a handler would (the SDK hashes it
 *    on every call to find the series);
 *  - the empty loop (the same value computation, no record), for scale.
 * CPU per record = process.cpuUsage() (user + system) over N records, loop included.
 */
import { createRequire } from 'node:module';
import { REPO_DIR } from './result.mjs';

const require = createRequire(import.meta.url);

export function measureRecordCost({ rounds = 5, records = 1_000_000 } = {}) {
  const { HttpServerMetrics } = require(`${REPO_DIR}/dist/telemetry/server-metrics.js`);
  const { HTTP_SERVER_DURATION_BUCKETS, SEMCONV } = require(`${REPO_DIR}/dist/telemetry/semconv.js`);
  const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
  class Reader extends MetricReader {
    async onShutdown() {}
    async onForceFlush() {}
  }
  const reader = new Reader();
  const histogram = new MeterProvider({ readers: [reader] })
    .getMeter('bench')
    .createHistogram(SEMCONV.httpServerDuration, { unit: 's', advice: { explicitBucketBoundaries: HTTP_SERVER_DURATION_BUCKETS } });
  const bound = new HttpServerMetrics().bind('GET', '/readyz', 200);
  const method = 'GET';
  const route = '/readyz';
  const status = 200;
  let sink = 0;
  const variants = {
    empty: (i) => {
      sink += 0.0001 + (i & 7) * 1e-5;
    },
    prebound: (i) => bound.record(0.0001 + (i & 7) * 1e-5),
    sdk: (i) => histogram.record(0.0001 + (i & 7) * 1e-5, { [SEMCONV.httpMethod]: method, [SEMCONV.httpRoute]: route, [SEMCONV.httpStatus]: status }),
  };
  const cpuUs = { empty: [], prebound: [], sdk: [] };
  const run = (name) => {
    const fn = variants[name];
    const start = process.cpuUsage();
    for (let i = 0; i < records; i++) fn(i);
    const used = process.cpuUsage(start);
    return (used.user + used.system) / records;
  };
  for (const name of Object.keys(variants)) run(name); // warm-up (JIT)
  const names = Object.keys(variants);
  for (let r = 0; r < rounds; r++) {
    for (const name of names.map((_, i) => names[(i + r) % names.length])) cpuUs[name].push(run(name));
  }
  if (sink < 0) console.log(sink);
  return { prebound: cpuUs.prebound, sdk: cpuUs.sdk, empty: cpuUs.empty, records, rounds };
}
