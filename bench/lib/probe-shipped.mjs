/** Helpers private to the probe-cost / memory / many-checks / detection benches. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_DIR } from './result.mjs';

/** The node flags of the image's ENTRYPOINT (e.g. --max-semi-space-size=2): benches run the sidecar as shipped. */
export function shippedNodeFlags() {
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(REPO_DIR, 'Dockerfile'), 'utf8'));
  return m ? JSON.parse(m[1]).filter((w) => w.startsWith('--')) : [];
}

/** p-th percentile (0..100) of xs, nearest-rank. */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
