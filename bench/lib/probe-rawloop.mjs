#!/usr/bin/env node
/**
 * The "raw" baseline of the probe-cost and many-checks benches: N loops, each
 * with its own kept connection, doing one request every `interval` ms at a
 * fixed rate (next start = previous due time + interval, like the sidecar's
 * scheduler), no policy, no state, no telemetry.
 *
 *   node bench/lib/probe-rawloop.mjs <http|redis|pg> <url> <loops> <intervalMs>
 *
 * Connects, prints {"ready":true}, then waits for commands on stdin, one per line:
 *   start → starts the loops;  count → prints {"count":n,"errors":e};  stop → closes, exits.
 * http: keep-alive GET of <url> (one Agent with maxSockets 1 per loop); the body is read.
 * redis: ioredis PING.  pg: pg Client `SELECT 1`.
 */
import http from 'node:http';
import readline from 'node:readline';

const [kind, urlArg, loopsArg, intervalArg] = process.argv.slice(2);
let url = urlArg;
const loops = Number(loopsArg);
const interval = Number(intervalArg);
let count = 0;
let errors = 0;
let running = false;
const timers = new Set();
const closers = [];

async function makeRequester() {
  const target = url;
  if (kind === 'http') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    closers.push(() => agent.destroy());
    return () =>
      new Promise((resolve) => {
        const req = http.get(target, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode >= 200 && res.statusCode < 300));
        });
        req.setTimeout(5000, () => req.destroy(new Error('timeout')));
        req.on('error', () => resolve(false));
      });
  }
  if (kind === 'redis') {
    const { default: Redis } = await import('ioredis');
    const client = new Redis(target, { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    await client.ping();
    closers.push(() => client.disconnect());
    return () => client.ping().then((r) => r === 'PONG', () => false);
  }
  if (kind === 'pg') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: target });
    client.on('error', () => {});
    await client.connect();
    closers.push(() => client.end().catch(() => {}));
    return () => client.query('SELECT 1').then(() => true, () => false);
  }
  throw new Error(`unknown kind ${kind}`);
}

const requesters = [];
const template = url;
for (let i = 0; i < loops; i++) {
  url = template.replaceAll('{i}', String(i)); // http: `{i}` in the URL = the loop's index (per-loop paths)
  requesters.push(await makeRequester());
}

function loop(request) {
  let due = Date.now() + Math.random() * interval;
  const tick = async () => {
    if (!running) return;
    const ok = await request();
    if (ok) count++;
    else errors++;
    due += interval;
    if (due < Date.now()) due = Date.now();
    const t = setTimeout(() => {
      timers.delete(t);
      void tick();
    }, due - Date.now());
    timers.add(t);
  };
  const t = setTimeout(() => {
    timers.delete(t);
    void tick();
  }, due - Date.now());
  timers.add(t);
}

console.log(JSON.stringify({ ready: true }));
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = line.trim();
  if (cmd === 'start' && !running) {
    running = true;
    for (const r of requesters) loop(r);
    console.log(JSON.stringify({ started: true }));
  } else if (cmd === 'count') {
    console.log(JSON.stringify({ count, errors }));
  } else if (cmd === 'stop') {
    running = false;
    for (const t of timers) clearTimeout(t);
    await Promise.all(closers.map((c) => c()));
    process.exit(0);
  }
});
