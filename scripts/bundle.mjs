#!/usr/bin/env node
/**
 * esbuild bundle of the compiled sidecar (dist/, so `npm run build` first): what
 * a smaller image could ship instead of dist/ + production node_modules (issue 22).
 * NOT what the image runs today: bench/startup.bench.mjs measures it beside the
 * shipped form (docs/deploy.md, "Footprint").
 *
 *   node scripts/bundle.mjs [--outdir bundle] [--json] [--no-minify]
 *
 * Output: <outdir>/cli.js (entry) and <outdir>/kubelet-worker.js (the kubelet
 * listener's thread script, found beside the entry as dist/server finds it).
 * version.ts reads ../package.json: the bundle directory goes beside package.json.
 *
 * Kept external, installed as packages beside the bundle (node_modules):
 *  - ioredis, pg: OpenTelemetry's require-hook instrumentations (ioredis, pg)
 *    patch them when they are require()d by name; inside a bundle there is no
 *    such require and their client spans would be gone. http is a node builtin
 *    (always external), so the http client spans keep working.
 *  - pino: @opentelemetry/instrumentation-pino patches it the same way (log
 *    sending with OTEL_LOGS_EXPORTER=otlp), and its thread-stream worker is a file.
 * Bundled although they read .proto files at run time: @grpc/grpc-js (channelz,
 * orca: never used here) and grpc-health-check (its Health service, loaded by the
 * grpc health server): `${__dirname}/../../proto` in their code is pointed at
 * <outdir>/proto/<package>, where their proto directories are copied.
 * The telemetry modules pick some packages by a name computed at run time
 * (require(name)): those calls are rewritten to a switch over the packages they
 * may name (KNOWN below), so esbuild sees every one. A dynamic require left anywhere else is
 * an error (the bundle would fail at run time on a path the tests may not take).
 *
 * --json prints one line: { bytes, files, external, outdir }.
 */
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const EXTERNAL = ['ioredis', 'pg', 'pino'];
/** packages bundled although they read .proto files next to their code: the files are copied to <outdir>/proto/<package> */
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
const outdir = resolve(ROOT, option('--outdir', 'bundle'));
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

/** points the packages' `${__dirname}/../../proto` at the copies beside the bundle */
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

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  entryPoints: { cli: join(dist, 'cli.js'), 'kubelet-worker': join(dist, 'server', 'kubelet-worker.js') },
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // ESM builds where a package has one: lets esbuild drop what is not imported (semantic-conventions' deprecated sets)
  mainFields: ['module', 'main'],
  minify: !flag('--no-minify'),
  keepNames: true,
  legalComments: 'none',
  external: EXTERNAL,
  plugins: [knownRequires, protoPaths],
  logLevel: 'silent',
  metafile: true,
});
const dynamic = result.warnings.filter((w) => /require|import/i.test(w.text) && !/tsx/.test(w.location?.lineText ?? ''));
if (dynamic.length) {
  for (const w of dynamic) console.error(`bundle: ${w.location?.file}:${w.location?.line}: ${w.text}\n  ${w.location?.lineText}`);
  console.error('bundle: a require the bundle cannot see would fail at run time');
  process.exit(1);
}
for (const [pkg, dir] of Object.entries(PROTO_DIRS)) cpSync(join(ROOT, dir), join(outdir, 'proto', pkg), { recursive: true });
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
if (json) console.log(JSON.stringify({ bytes, files, external: EXTERNAL, outdir }));
else console.log(`bundle: ${files.length} files in ${outdir}: ${(bytes / 1024 / 1024).toFixed(2)} MiB; external: ${EXTERNAL.join(', ')}`);
