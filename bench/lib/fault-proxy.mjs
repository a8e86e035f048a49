/**
 * The test suite's TCP fault proxy (test/helpers/fault-proxy.ts: pass / refuse /
 * blackhole / latency / reset), loaded through tsx's API so plain `node` benches
 * can use it without a copy that could drift.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { REPO_DIR } from './result.mjs';

/** @returns {Promise<import('../../test/helpers/fault-proxy.ts').FaultProxy>} */
export async function startFaultProxy(target) {
  const mod = await tsImport(pathToFileURL(join(REPO_DIR, 'test/helpers/fault-proxy.ts')).href, import.meta.url);
  return mod.startFaultProxy(target);
}
