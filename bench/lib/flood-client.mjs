#!/usr/bin/env node
/**
 * A flood of the sidecar's expensive endpoints, run as its own process so the
 * flood's CPU is not the measuring process's event loop (issue 14.2).
 *
 *   node bench/lib/flood-client.mjs '{"port":9464,"clients":200,"ms":3000,"key":"…","paths":["/metrics","/health","/","/admin/diagnostics"]}'
 *
 * `clients` keep-alive connections, each from its own loopback address
 * (127.0.x.y: every client is within its own per-IP quota, as many pods or
 * many viewers would be), each sending its next request as soon as the last
 * one is answered, for `ms`. Prints one JSON line when done:
 * { requests, statuses: {status: n}, shed, retryAfter, noAnswer, maxMs }.
 * A request with no answer within 15 s counts as noAnswer (a hang).
 */
import http from 'node:http';

const { port, clients, ms, key, paths, host = '127.0.0.1' } = JSON.parse(process.argv[2] ?? '{}');
if (!port || !clients || !ms || !Array.isArray(paths)) {
  console.error('usage: flood-client.mjs \'{"port":…,"clients":…,"ms":…,"paths":[…],"key":"…"}\'');
  process.exit(2);
}

const statuses = {};
let requests = 0;
let shed = 0;
let retryAfter = 0;
let noAnswer = 0;
let maxMs = 0;

function once(agent, localAddress, path) {
  const started = performance.now();
  return new Promise((resolve) => {
    const headers = { 'accept-encoding': 'gzip' };
    if (key) headers.authorization = `Bearer ${key}`;
    const req = http.get({ host, port, path, agent, localAddress, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status === 503 && res.headers['retry-after'] !== undefined) retryAfter++;
        if (status === 503 && Buffer.concat(chunks).toString('utf8').includes('"overloaded"')) shed++;
        resolve(status);
      });
      res.on('error', () => resolve(0));
    });
    req.setTimeout(15_000, () => {
      noAnswer++;
      req.destroy();
    });
    req.on('error', () => resolve(0));
  }).then((status) => {
    maxMs = Math.max(maxMs, performance.now() - started);
    requests++;
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
}

const until = performance.now() + ms;
await Promise.all(
  Array.from({ length: clients }, async (_, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const localAddress = `127.0.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`;
    let next = i;
    while (performance.now() < until) await once(agent, localAddress, paths[next++ % paths.length]);
    agent.destroy();
  }),
);
process.stdout.write(`${JSON.stringify({ requests, statuses, shed, retryAfter, noAnswer, maxMs: Math.round(maxMs) })}\n`);
