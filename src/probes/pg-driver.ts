/**
 * The pg driver, required when something first needs it (a postgres check, the
 * monitor store, the uptime store), never at start.
 *
 * On Node 20, loading pg also loads node's whole fetch implementation (undici):
 * pg's `lib/stream.js` asks at load whether it runs in a Cloudflare Worker, and
 * when `navigator` is undefined it does so by constructing a `Response`. That
 * costs +5.4 MiB RSS, +2.2 MiB of heap and ~50 ms per process for an answer
 * that is always "no" here (measured: `require('pg')` beside an empty process,
 * pod flags). Node 21 and later define `navigator` (userAgent `Node.js/<major>`)
 * and pg reads that instead, so the image (Node 22) never pays it. On Node 20
 * the same `navigator` is defined for this one synchronous require and removed
 * again, so nothing else ever sees it. docs/deploy.md ("Footprint").
 */
type Pg = typeof import('pg');

export function requirePg(): Pg {
  const global = globalThis as { navigator?: unknown };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (global.navigator !== undefined) return require('pg') as Pg;
  global.navigator = { userAgent: `Node.js/${process.versions.node.split('.')[0]}` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pg') as Pg;
  } finally {
    delete global.navigator;
  }
}
