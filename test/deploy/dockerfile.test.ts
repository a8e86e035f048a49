/**
 * The container image without a Docker engine: the Dockerfile is linted
 * (dockerfile-utils), checked against package.json and .dockerignore, and its
 * stages are executed natively in a temp directory — COPYs done as the builder
 * would (honouring .dockerignore), RUNs run verbatim — and the resulting
 * runtime layout must start: `validate` passes and `run` serves its probes.
 */
import { strict as assert } from 'node:assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { validate } from 'dockerfile-utils';
import { parseConfig } from '../../src/probes/registry';
import { freePort, waitFor } from '../helpers/servers';
import { dockerIgnore, parseDockerfile, readText, run, startChild, words, type Stage } from './support';
import { ROOT } from '../helpers/paths';

const dockerfile = readText('Dockerfile');
const { args: globalArgs, stages } = parseDockerfile(dockerfile);
const ignored = dockerIgnore(readText('.dockerignore'));
const pkg = JSON.parse(readText('package.json')) as { scripts: Record<string, string>; bin: Record<string, string>; files: string[] };
const stage = (name: string) => {
  const s = stages.find((x) => x.name === name);
  assert.ok(s, `stage ${name} exists`);
  return s;
};
const of = (s: Stage, keyword: string) => s.instructions.filter((i) => i.keyword === keyword);
const argDefault = (name: string) => globalArgs.map((a) => /^(\w+)=(.*)$/.exec(a.args)).find((m) => m?.[1] === name)?.[2];
const imageOf = (s: Stage) => s.image.replace(/^\$\{(\w+)\}$/, (_m, name: string) => argDefault(name) ?? '');

/** Files under a context path (a file or a directory), '/'-separated, relative to the repo. */
function contextFiles(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(ROOT, join(e.parentPath, e.name)).split('\\').join('/'));
}

describe('Dockerfile', () => {
  test('lints clean with dockerfile-utils (and the linter does catch a broken file)', () => {
    assert.deepEqual(validate(dockerfile).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
    const broken = validate('FROM node:22-slim AS a\nEXPOSE port-nine\nCOPY onlyone\n');
    assert.ok(broken.length >= 2, `broken Dockerfile yields diagnostics: ${JSON.stringify(broken.map((d) => d.message))}`);
  });

  test('stages: build → deps → runtime on Node 22 slim, build runs the package.json build and bundle scripts, deps installs what the bundle keeps external', () => {
    assert.deepEqual(stages.map((s) => s.name), ['build', 'deps', 'runtime']);
    for (const s of stages) assert.match(imageOf(s), /^node:22-(bookworm-)?slim$/, `${s.name} uses Node 22 slim`);
    const deps = of(stage('deps'), 'RUN').map((r) => r.args);
    assert.deepEqual(deps, ['npm ci --omit=dev --ignore-scripts --no-audit --no-fund']);
    assert.deepEqual(of(stage('deps'), 'COPY').map((c) => c.args), ['--from=build /build/bundle/package.json /build/bundle/package-lock.json ./'], 'deps installs from the lockfile cut scripts/bundle.mjs writes');
    const build = of(stage('build'), 'RUN').map((r) => r.args);
    assert.deepEqual(build, ['npm ci --ignore-scripts --no-audit --no-fund', 'npm run build', 'npm run bundle']);
    assert.equal(pkg.scripts.build, 'tsc -p tsconfig.json', 'the build script the image runs compiles with tsconfig.json');
    assert.equal(pkg.scripts.bundle, 'node scripts/bundle.mjs', 'the bundle script the image runs is scripts/bundle.mjs');
    // everything `npm run build` and `npm run bundle` read is copied before they run
    const copiedBeforeBuild = stage('build').instructions.slice(0, stage('build').instructions.findIndex((i) => i.args === 'npm run build')).filter((i) => i.keyword === 'COPY').flatMap((i) => words(i.args).slice(0, -1));
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'scripts/bundle.mjs']) assert.ok(copiedBeforeBuild.includes(needed), `${needed} copied before the build`);
  });

  test('runtime: non-root numeric user, port 9464, entrypoint is the bundle, no HEALTHCHECK, only the bundle and its external packages', () => {
    const runtime = stage('runtime');
    const keywords = stages.flatMap((s) => s.instructions.map((i) => i.keyword));
    assert.ok(!keywords.includes('HEALTHCHECK'), 'no HEALTHCHECK: the kubelet probes');
    const user = of(runtime, 'USER').map((u) => u.args);
    assert.deepEqual(user, ['10001:10001']);
    assert.match(of(runtime, 'RUN')[0]!.args, /useradd --system --uid 10001 --gid 10001/);
    assert.deepEqual(of(runtime, 'EXPOSE').map((e) => e.args), ['9464']);
    assert.equal(parseConfig('{}', 'defaults').server.port, 9464, 'EXPOSE matches the default server.port');
    const command = [...words(of(runtime, 'ENTRYPOINT')[0]!.args), ...words(of(runtime, 'CMD')[0]!.args)];
    assert.deepEqual(command, ['node', '--max-semi-space-size=2', '--v8-pool-size=1', '/app/bundle/cli.js', 'run', '--config', '/etc/health-sidecar/sidecar.yaml']);
    // npm start runs the same artifact with the same flags
    assert.equal(pkg.scripts.start, 'node --max-semi-space-size=2 --v8-pool-size=1 bundle/cli.js run --config config/sidecar.yaml');
    assert.equal(pkg.scripts.prestart, 'npm run build && npm run bundle');
    assert.deepEqual(of(runtime, 'WORKDIR').map((w) => w.args), ['/app']);
    assert.deepEqual(of(runtime, 'ENV').map((e) => e.args), ['NODE_ENV=production MALLOC_ARENA_MAX=2']);
    // node_modules comes only from the --omit=dev stage; from the build only the bundle and package.json (version.ts reads it)
    const copies = of(runtime, 'COPY').map((c) => c.args);
    assert.deepEqual(copies, ['--from=deps /deps/node_modules ./node_modules', '--from=build /build/package.json ./', '--from=build /build/bundle/ ./bundle/', 'config/sidecar.yaml /etc/health-sidecar/sidecar.yaml']);
  });

  test('runtime: OCI labels (title, description, source, licenses, version, revision) match package.json; the version is a build arg defaulting to the package version', () => {
    const runtime = stage('runtime');
    const labels = Object.fromEntries([...of(runtime, 'LABEL').map((l) => l.args).join(' ').matchAll(/([\w.]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const full = JSON.parse(readText('package.json')) as { name: string; description: string; license: string; version: string };
    const args = Object.fromEntries(of(runtime, 'ARG').map((a) => a.args.split('=') as [string, string]));
    assert.equal(labels['org.opencontainers.image.title'], full.name);
    assert.equal(labels['org.opencontainers.image.description'], full.description);
    assert.equal(labels['org.opencontainers.image.licenses'], full.license);
    assert.equal(labels['org.opencontainers.image.source'], `https://github.com/${full.name}/${full.name}`);
    assert.equal(labels['org.opencontainers.image.version'], '${VERSION}');
    assert.equal(args.VERSION, full.version, 'a local build is labelled with the package version');
    assert.equal(labels['org.opencontainers.image.revision'], '${REVISION}');
    assert.ok('REVISION' in args);
    const order = runtime.instructions.map((i) => i.keyword);
    assert.ok(order.indexOf('ARG') < order.indexOf('LABEL'), 'ARG declared in the stage before the LABEL that uses it');
  });

  test('every COPY source from the build context exists and survives .dockerignore', () => {
    const sources = stages.flatMap((s) => of(s, 'COPY')).filter((c) => !c.args.startsWith('--from')).flatMap((c) => words(c.args).slice(0, -1));
    assert.ok(sources.length >= 5);
    for (const source of sources) {
      assert.ok(existsSync(join(ROOT, source)), `COPY source ${source} exists`);
      for (const file of contextFiles(source)) assert.ok(!ignored(file), `${file} (COPY ${source}) is not excluded by .dockerignore`);
    }
    // and the context is small: nothing heavy or secret gets sent
    for (const path of ['node_modules/yaml/package.json', 'dist/cli.js', '.git/HEAD', 'test/helpers/servers.ts', 'deploy/compose.yaml', 'src/.env', 'src/x.swp']) assert.ok(ignored(path), `${path} is excluded`);
  });

  describe('stages executed natively', () => {
    let work: string;
    before(() => {
      work = mkdtempSync(join(tmpdir(), 'dockerfile-'));
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    test('deps + build + runtime layout: validate works and `run` serves its probes from /app', { timeout: 600_000 }, async () => {
      const stageRoot = (name: string) => join(work, name);
      // npm: use the local cache first (the suite must not depend on the network when the cache is warm)
      const env = { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' };
      const mapped = (s: Stage, p: string, cwd: string) => (p.startsWith('/') ? join(stageRoot(s.name), p) : join(cwd, p));
      for (const s of stages) {
        let cwd = stageRoot(s.name);
        mkdirSync(cwd, { recursive: true });
        for (const ins of s.instructions) {
          if (ins.keyword === 'WORKDIR') {
            cwd = join(stageRoot(s.name), ins.args);
            mkdirSync(cwd, { recursive: true });
          } else if (ins.keyword === 'COPY') {
            const parts = words(ins.args);
            const from = parts[0]!.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
            const dest = parts.pop()!;
            for (const src of parts) {
              const target = dest.endsWith('/') || parts.length > 1 ? join(mapped(s, dest, cwd), posix.basename(src)) : mapped(s, dest, cwd);
              if (from) {
                const origin = join(stageRoot(from), src);
                assert.ok(existsSync(origin), `${ins.line}: COPY --from=${from} ${src} exists in stage ${from}`);
                mkdirSync(dirname(target), { recursive: true });
                // "COPY dir/ ./" copies the directory's contents
                cpSync(origin, src.endsWith('/') ? mapped(s, dest, cwd) : target, { recursive: true });
              } else {
                for (const file of contextFiles(src)) {
                  const rel = file === src ? '' : file.slice(src.length + 1);
                  const out = rel ? join(target, rel) : target;
                  mkdirSync(dirname(out), { recursive: true });
                  cpSync(join(ROOT, file), out);
                }
              }
            }
          } else if (ins.keyword === 'RUN') {
            if (ins.args === 'npm ci --ignore-scripts --no-audit --no-fund') {
              // the full dev install: same lockfile as the repo's own install, so reuse it (saves ~20 s)
              assert.equal(readFileSync(join(cwd, 'package-lock.json'), 'utf8'), readText('package-lock.json'));
              symlinkSync(join(ROOT, 'node_modules'), join(cwd, 'node_modules'), 'dir');
            } else if (ins.args.startsWith('groupadd ')) {
              // creating the system user needs root in an image; checked above
            } else {
              const result = await run('sh', ['-c', ins.args], { cwd, env });
              assert.equal(result.code, 0, `Dockerfile:${ins.line} RUN ${ins.args}\n${result.stdout}\n${result.stderr}`);
            }
          }
        }
      }
      const app = join(stageRoot('runtime'), 'app');
      // the runtime holds the bundle and the packages it keeps external, nothing else
      assert.ok(existsSync(join(app, 'bundle/cli.js')));
      assert.ok(existsSync(join(app, 'bundle/kubelet-worker.js')), 'the kubelet thread script beside the entry');
      assert.ok(existsSync(join(app, 'package.json')));
      assert.deepEqual(readdirSync(join(app, 'node_modules')).filter((d) => ['ioredis', 'pg', 'pino'].includes(d)).sort(), ['ioredis', 'pg', 'pino']);
      for (const bundled of ['yaml', 'zod', '@opentelemetry', 'cockatiel', 'typescript', 'tsx', 'esbuild']) assert.ok(!existsSync(join(app, 'node_modules', bundled)), `${bundled} is in the bundle or not shipped, not in node_modules`);
      assert.ok(!existsSync(join(app, 'dist')), 'no compiled tree beside the bundle');
      assert.ok(!existsSync(join(app, 'src')), 'no TypeScript sources in the runtime');
      // what the image adds on top of the Node base: every file copied into the runtime stage (issue 22: ≤ 8 MiB)
      const bytesUnder = (dir: string): number =>
        readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);
      const added = bytesUnder(stageRoot('runtime'));
      assert.ok(added <= 8 * 1024 * 1024, `the runtime stage adds ${(added / 1024 / 1024).toFixed(2)} MiB, over 8 MiB`);
      assert.ok(added > bytesUnder(join(app, 'bundle')), 'the count includes node_modules');

      const cleanEnv = { PATH: process.env.PATH, NODE_ENV: 'production' } as NodeJS.ProcessEnv;
      const etcConfig = join(stageRoot('runtime'), 'etc/health-sidecar/sidecar.yaml');
      const validated = await run('node', ['bundle/cli.js', 'validate', '--config', etcConfig], { cwd: app, env: cleanEnv });
      assert.equal(validated.code, 0, validated.stderr);
      assert.equal(validated.stdout, `${etcConfig}: ok: 1 check(s), 3 skipped (app, cache, db), port 9464\n`);
      const version = await run('node', ['bundle/cli.js', '--version'], { cwd: app, env: cleanEnv });
      assert.equal(version.stdout.trim(), JSON.parse(readText('package.json')).version, 'the bundle reads the version from /app/package.json');

      // ENTRYPOINT + CMD with the image's config path mapped into the temp root
      const runtime = stage('runtime');
      const command = [...words(of(runtime, 'ENTRYPOINT')[0]!.args), ...words(of(runtime, 'CMD')[0]!.args)].map((w) => (w.startsWith('/') ? join(stageRoot('runtime'), w) : w));
      const port = await freePort();
      const child = startChild(command[0]!, command.slice(1), { cwd: app, env: { ...cleanEnv, PORT: String(port), DRAIN_DELAY: '0s', HOST: '127.0.0.1' } });
      try {
        await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000, what: "runtime sidecar ready" });
        const healthy = await fetch(`http://127.0.0.1:${port}/-/healthy`);
        assert.equal(healthy.status, 200);
        assert.equal(await healthy.text(), 'ok');
        child.proc.kill('SIGTERM');
        const exit = await child.exited;
        assert.deepEqual(exit, { code: 0, signal: null }, child.stderr());
      } finally {
        await child.kill('SIGKILL');
      }
    });
  });
});
