/**
 * Baseline servers run as their own node processes (so their CPU can be read from
 * /proc and they can be pinned like the sidecar):
 *  - bare:     node:http answering 200 "ok" to every request
 *  - terminus: node:http whose /readyz runs an ioredis PING per request, answers after
 *              (what @godaddy/terminus-style health checks do)
 * Each prints {"port":N} on its first stdout line.
 */
import { firstLine, spawnNode, stopChild } from './proc.mjs';
import { REPO_DIR } from './result.mjs';

const BARE = `
import http from 'node:http';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '2' });
  res.end('ok');
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
`;

const TERMINUS = `
import http from 'node:http';
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(REPO_DIR + '/package.json')});
const Redis = require('ioredis');
const redis = new Redis(process.env.BENCH_REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
redis.on('error', () => {});
await new Promise((r) => redis.once('ready', r));
const server = http.createServer(async (req, res) => {
  try {
    await redis.ping();
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '2' });
    res.end('ok');
  } catch {
    res.writeHead(503, { 'content-length': '0' });
    res.end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
`;

async function start(code, { cpu, env, nodeArgs = [] } = {}) {
  const child = spawnNode({ code }, [], { cpu, env, nodeArgs });
  const { port } = await firstLine(child);
  return { pid: child.pid, port, url: `http://127.0.0.1:${port}`, child, stop: () => stopChild(child) };
}

export const startBareServer = (opts) => start(BARE, opts);
export const startTerminusServer = (redisUrl, opts = {}) => start(TERMINUS, { ...opts, env: { ...opts.env, BENCH_REDIS_URL: redisUrl } });
