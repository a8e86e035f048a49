#!/usr/bin/env node
/**
 * The shipped form of the sidecar (issue 22): esbuild bundles of the compiled
 * sidecar (dist/, so `npm run build` first), one minified file per package.
 * docs/deploy.md ("Footprint") has the measurements behind this layout.
 *
 *   node scripts/bundle.mjs [--outdir bundle] [--json] [--no-minify]
 *
 * Output (<outdir>, `bundle/` of the working directory by default, beside
 * package.json: version.ts reads ../package.json):
 *  - cli.js: the app (every module of dist/) and kubelet-worker.js, the kubelet
 *    listener's thread script, found beside the entry as dist/server finds it;
 *  - pkg/<package>.js: one file per package, holding every entry of it that
 *    something requires (`zod`, `zod/v4` and `zod/v4/core` share one file, so
 *    their common modules are evaluated once); a require of another package
 *    stays a require, of that package's file. Why not one file: V8 compiles a
 *    script's top level at once, and the zone memory of compiling a 2.3 MiB
 *    script (+21 MiB RSS) stays with the process (the single-file bundle ran
 *    at 103 vs 85 MiB for dist + node_modules); and a package required lazily
 *    (an OTLP exporter, the gRPC stack, nodemailer, jose, zod-openapi) is not
 *    even read until something requires it, as from node_modules;
 *  - package.json + package-lock.json: the packages kept external (below) and
 *    their dependencies, cut from the repository's lockfile, for `npm ci` in
 *    <outdir> (`--omit=dev`): the image installs them from this pair.
 *
 * Kept external, installed as packages (node_modules):
 *  - ioredis, pg: OpenTelemetry's require-hook instrumentations (ioredis, pg)
 *    patch them when they are require()d by name; inside a bundle there is no
 *    such require and their client spans would be gone. http is a node builtin
 *    (always external), so the http client spans keep working.
 *  - pino: @opentelemetry/instrumentation-pino patches it the same way (log
 *    sending with OTEL_LOGS_EXPORTER=otlp), and its thread-stream worker is a file.
 * Bundled although they read .proto files at run time: @grpc/grpc-js (channelz,
 * orca: never used here) and grpc-health-check (its Health service, loaded by the
 * grpc health server): `${__dirname}/../../proto` in their code is pointed at
 * <outdir>/pkg/proto/<package>, where their proto directories are copied.
 * The telemetry modules pick some packages by a name computed at run time
 * (require(name)): those calls are rewritten to a switch over the packages they
 * may name (KNOWN below), so esbuild sees every one. A dynamic require left anywhere
 * else is an error (the bundle would fail at run time on a path the tests may not take).
 *
 * --json prints one line: { bytes, files, external, outdir, unresolved }.
 */
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const EXTERNAL = ['ioredis', 'pg', 'pino'];
/** packages bundled although they read .proto files next to their code: the files are copied to <outdir>/pkg/proto/<package> */
const PROTO_DIRS = { 'grpc-health-check': 'node_modules/grpc-health-check/proto', '@grpc/grpc-js': 'node_modules/@grpc/grpc-js/proto' };
/** every package the telemetry modules may name at run time */
const KNOWN = [
  '@opentelemetry/context-async-hooks',
  '@opentelemetry/propagator-b3',
  '@opentelemetry/propagator-jaeger',
  ...['trace', 'metrics', 'logs'].flatMap((signal) => ['grpc', 'proto', 'http'].map((p) => `@opentelemetry/exporter-${signal}-otlp-${p}`)),
];

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
// relative to the working directory: `npm run bundle` from a package directory whose files are links (the docs test's workspace) writes there
const outdir = resolve(option('--outdir', 'bundle'));
const pkgdir = join(outdir, 'pkg');
const json = flag('--json');
const dist = join(ROOT, 'dist');
if (!existsSync(join(dist, 'cli.js'))) {
  console.error('dist/cli.js missing: run `npm run build` first');
  process.exit(2);
}

const knownSwitch = `function __requireKnown(name) {\n  switch (name) {\n${KNOWN.map((n) => `    case ${JSON.stringify(n)}: return require(${JSON.stringify(n)});`).join('\n')}\n    default: throw new Error('bundle: package ' + name + ' is not part of this bundle');\n  }\n}\n`;

/** rewrites run-time package picks in dist/telemetry to the static switch */
const knownRequires = {
  name: 'known-requires',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]telemetry[\\/][^\\/]+\.js$/ }, (a) => {
      let text = readFileSync(a.path, 'utf8');
      const before = text;
      text = text.replace(/\brequire\((name|pkg|packageName)\)/g, '__requireKnown($1)');
      return { contents: text === before ? text : knownSwitch + text, loader: 'js' };
    });
  },
};

/** points the packages' `${__dirname}/../../proto` at the copies beside their files */
const protoPaths = {
  name: 'proto-paths',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/](grpc-health-check|@grpc[\\/]grpc-js)[\\/].*\.js$/ }, (a) => {
      const pkg = /node_modules[\\/](grpc-health-check|@grpc[\\/]grpc-js)[\\/]/.exec(a.path)[1].replace('\\', '/');
      const text = readFileSync(a.path, 'utf8');
      if (!text.includes('${__dirname}/../../proto')) return undefined;
      return { contents: text.replaceAll('${__dirname}/../../proto', '${__dirname}/proto/' + pkg), loader: 'js', resolveDir: dirname(a.path) };
    });
  },
};

/**
 * package directory → { name: its file under pkg/ (without .js), entries: entry file → key }. Every
 * entry of a package anyone requires (`zod`, `zod/v4`, `zod/v4/core`) goes into the package's one
 * file, so the modules they share are evaluated once, as from node_modules.
 */
const packages = new Map();
const dirty = new Set();
const unresolved = new Set();
const NM = `${sep}node_modules${sep}`;
const packageRoot = (file) => {
  const i = file.lastIndexOf(NM);
  if (i < 0) return undefined;
  const rest = file.slice(i + NM.length).split(sep);
  return file.slice(0, i + NM.length) + rest.slice(0, rest[0].startsWith('@') ? 2 : 1).join(sep);
};
const packageEntry = (file) => {
  const root = packageRoot(file);
  // esbuild resolves symlinks: node_modules may be one (test/deploy/dockerfile.test.ts links the repository's)
  const rel = root && relative(realpathSync(join(ROOT, 'node_modules')), root).split(sep).join('/');
  if (!rel || rel.startsWith('..')) throw new Error(`bundle: ${file} is outside node_modules`);
  let pkg = packages.get(root);
  if (!pkg) packages.set(root, (pkg = { name: rel.replace(/\/node_modules\//g, '~').replace(/\//g, '+'), entries: new Map() }));
  const key = relative(root, file).split(sep).join('/');
  if (!pkg.entries.has(file)) {
    pkg.entries.set(file, key);
    dirty.add(root);
  }
  return { name: pkg.name, key };
};

/**
 * a bare package require → that entry of the package's file under pkg/ (ioredis, pg, pino stay
 * packages); a package requiring itself by name stays inside its file
 */
const packageFiles = (fromPkgDir) => ({
  name: 'package-files',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (a) => {
      if (a.pluginData === 'inner' || isBuiltin(a.path)) return undefined;
      // require.resolve('tsx/cjs'): the kubelet listener's path when run from TypeScript sources, never taken in a bundle
      if (a.kind === 'require-resolve') return { path: a.path, external: true };
      const bare = a.path.startsWith('@') ? a.path.split('/').slice(0, 2).join('/') : a.path.split('/')[0];
      if (EXTERNAL.includes(bare)) return { path: a.path, external: true };
      const r = await b.resolve(a.path, { kind: a.kind, resolveDir: a.resolveDir, importer: a.importer, pluginData: 'inner' });
      // not installed (an optional require in a try, e.g. debug's supports-color): left as it is, failing at run time as it would from node_modules
      if (r.errors.length) {
        unresolved.add(`${a.path} (${relative(ROOT, a.importer)})`);
        return { path: a.path, external: true };
      }
      if (r.path.endsWith('.json')) return r; // data: inlined where it is required
      if (fromPkgDir && packageRoot(r.path) === packageRoot(a.importer)) return r;
      const { name, key } = packageEntry(r.path);
      return { path: `${fromPkgDir ? './' : './pkg/'}${name}.js|${key}`, namespace: 'package-entry' };
    });
    // the requiring side: a two-line module taking the entry from the package's file
    b.onLoad({ filter: /.*/, namespace: 'package-entry' }, (a) => {
      const [file, key] = a.path.split('|');
      return { contents: `module.exports = require(${JSON.stringify(file)})[${JSON.stringify(key)}]();`, loader: 'js', resolveDir: outdir };
    });
    b.onResolve({ filter: /.*/, namespace: 'package-entry' }, (a) => ({ path: a.path, external: true }));
  },
});

/** a package's file: one memoised getter per entry required of it */
const packageSource = (root) =>
  `module.exports = {\n${[...packages.get(root).entries]
    .map(([file, key]) => `  ${JSON.stringify(key)}: (() => { let m; return () => (m ??= require(${JSON.stringify(file)})); })(),`)
    .join('\n')}\n};\n`;

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // whitespace and syntax only: identifiers keep their names, so stack traces in the logs stay
  // readable and this.constructor.name (sdk-metrics' reader names, pino's err.type) is the class's
  // own. Renaming identifiers as well saves 0.9 MiB on disk but not memory: zod alone, required
  // beside an empty process, took +10.1 MiB RSS renamed vs +5.4 MiB not (+11.1 from node_modules)
  minifyWhitespace: !flag('--no-minify'),
  minifySyntax: !flag('--no-minify'),
  legalComments: 'none',
  logLevel: 'silent',
};
const warnings = [];
rmSync(outdir, { recursive: true, force: true });
mkdirSync(pkgdir, { recursive: true });
const app = await build({
  ...common,
  entryPoints: { cli: join(dist, 'cli.js'), 'kubelet-worker': join(dist, 'server', 'kubelet-worker.js') },
  outdir,
  plugins: [knownRequires, packageFiles(false)],
});
warnings.push(...app.warnings);
// a package's build may ask for a new entry of another package (or of one built already): rebuilt until none does
while (dirty.size) {
  const [root] = dirty;
  dirty.delete(root);
  const { name } = packages.get(root);
  const r = await build({
    ...common,
    stdin: { contents: packageSource(root), resolveDir: root, sourcefile: `${name}.js`, loader: 'js' },
    outfile: join(pkgdir, `${name}.js`),
    plugins: [protoPaths, packageFiles(true)],
  });
  warnings.push(...r.warnings);
}
const dynamic = warnings.filter((w) => /require|import/i.test(w.text));
if (dynamic.length) {
  for (const w of dynamic) console.error(`bundle: ${w.location?.file}:${w.location?.line}: ${w.text}\n  ${w.location?.lineText}`);
  console.error('bundle: a require the bundle cannot see would fail at run time');
  process.exit(1);
}
// esbuild's CommonJS wrapper keeps every module's function (its whole top level) reachable after it
// has run; node's loader drops a module's wrapper once it has run. Dropped here too, after the first
// successful run (a module that threw keeps it, to run again as node would).
const COMMONJS = 'var __commonJS=(cb,mod)=>function(){try{return mod||(0,cb[__getOwnPropNames(cb)[0]])((mod={exports:{}}).exports,mod),mod.exports}catch(e){throw mod=0,e}};';
const COMMONJS_DROPPING = 'var __commonJS=(cb,mod)=>function(){try{return mod||((0,cb[__getOwnPropNames(cb)[0]])((mod={exports:{}}).exports,mod),cb=0),mod.exports}catch(e){throw mod=0,e}};';
for (const file of [join(outdir, 'cli.js'), join(outdir, 'kubelet-worker.js'), ...readdirSync(pkgdir).filter((f) => f.endsWith('.js')).map((f) => join(pkgdir, f))]) {
  const text = readFileSync(file, 'utf8');
  if (!text.includes('__commonJS=')) continue;
  if (!text.includes(COMMONJS)) {
    console.error(`bundle: ${relative(outdir, file)}: esbuild's __commonJS helper is not the one scripts/bundle.mjs knows (update COMMONJS)`);
    process.exit(1);
  }
  writeFileSync(file, text.replace(COMMONJS, COMMONJS_DROPPING));
}
for (const [pkg, dir] of Object.entries(PROTO_DIRS)) cpSync(join(ROOT, dir), join(pkgdir, 'proto', pkg), { recursive: true });

// package.json + package-lock.json for the external packages: the root lockfile's entries node would resolve from them
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const locked = {};
const visit = (from, dep) => {
  // node's lookup: <from>/node_modules/dep, then each parent's node_modules, up to the root
  for (let at = from; ; at = at.includes('/node_modules/') ? at.slice(0, at.lastIndexOf('/node_modules/')) : '') {
    const key = `${at ? `${at}/` : ''}node_modules/${dep}`;
    if (lock.packages[key]) {
      if (locked[key]) return;
      locked[key] = lock.packages[key];
      for (const d of Object.keys({ ...lock.packages[key].dependencies, ...lock.packages[key].optionalDependencies })) visit(key, d);
      return;
    }
    if (!at) throw new Error(`bundle: ${dep} (needed by ${from || 'the bundle'}) is not in package-lock.json`);
  }
};
const dependencies = Object.fromEntries(EXTERNAL.map((d) => [d, rootPkg.dependencies[d]]));
for (const d of EXTERNAL) visit('', d);
const manifest = { name: `${rootPkg.name}-bundle`, version: rootPkg.version, private: true, description: 'generated by scripts/bundle.mjs: the packages the bundle keeps external', dependencies };
writeFileSync(join(outdir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const sorted = Object.fromEntries(Object.keys(locked).sort().map((k) => [k, locked[k]]));
writeFileSync(join(outdir, 'package-lock.json'), `${JSON.stringify({ name: manifest.name, version: manifest.version, lockfileVersion: 3, requires: true, packages: { '': { name: manifest.name, version: manifest.version, dependencies }, ...sorted } }, null, 2)}\n`);

let bytes = 0;
const files = [];
const walk = (dir, rel) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), `${rel}${e.name}/`);
    else {
      bytes += statSync(join(dir, e.name)).size;
      files.push(rel + e.name);
    }
  }
};
walk(outdir, '');
if (json) console.log(JSON.stringify({ bytes, files, external: EXTERNAL, outdir, unresolved: [...unresolved] }));
else {
  if (unresolved.size) console.log(`bundle: not installed, left as requires: ${[...unresolved].join(', ')}`);
  console.log(`bundle: ${files.length} files (${packages.size} package files) in ${outdir}: ${(bytes / 1024 / 1024).toFixed(2)} MiB; external: ${EXTERNAL.join(', ')}`);
}
