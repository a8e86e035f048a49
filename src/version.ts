import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** package.json version; the same file from src/ (tsx) and dist/ (compiled). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
