// Preload (`node -r test/helpers/loaded-modules.cjs …`): when the process exits, writes
// the modules it loaded to $LOADED_MODULES_OUT as JSON: `files` (require.cache keys:
// every CommonJS file evaluated) and `builtins` (node's own modules, from
// process.moduleLoadList). Used by test/probes/lazy-drivers.test.ts and
// bench/memory.bench.mjs to tell which drivers a config made the sidecar load.
'use strict';
const { writeFileSync } = require('node:fs');
const out = process.env.LOADED_MODULES_OUT;
if (out) {
  process.on('exit', () => {
    const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
    writeFileSync(out, JSON.stringify({ files: Object.keys(require.cache), builtins }));
  });
}
