/**
 * README.md and docs/*.md work as written. Every fenced block is checked
 * according to its kind, and the line before a block may say how with a marker
 * `<!-- doc-test: KIND … -->`:
 *
 * | block | marker | what is checked |
 * | --- | --- | --- |
 * | yaml | none or `config` | a sidecar config: the loader accepts it (with the variables a reader sets, listed in DOC_ENV) and it runs with the compiled CLI against stand-ins to ready, every check UP |
 * | yaml | `config not-run (why)` | loaded only; `why` says what it would need |
 * | yaml / json | `fragment FILE` | the block is found, as written, inside FILE (parsed) |
 * | yaml | `k8s Container` | fields of a Kubernetes container: none unknown |
 * | yaml | `file PATH` | a file of a walkthrough, written to PATH in the workspace the `run` blocks use |
 * | json | none | parses |
 * | json | `webhook-payload` | same keys and value types as the body a real webhook delivery has |
 * | sh | `run` | every command is run here (workspace: a temp dir linking the repo's files) and must exit 0; `npm start` runs in the background (PORT set to a free port, which the block's `localhost:9464` then means); `curl` URLs must answer 2xx; `kubectl kustomize DIR` output must validate; `health-sidecar` is `node dist/cli.js` |
 * | sh | `cluster` | needs a cluster or Docker: not run, but every `-k DIR` renders, every `-f FILE` exists (and validates), `docker build … .` has its Dockerfile, and `kubectl create secret` commands create exactly the Secrets and keys the manifests read |
 * | sh | `not-run (why)` | nothing; `why` is required |
 * | promql | none | `promtool check rules` accepts every expression |
 *
 * And in the prose: every relative link resolves to a file in the repository
 * (and its #anchor to a heading there), no link leaves the repository, and every
 * repository path written in backticks (`deploy/…`, `src/…`, …) exists.
 * Failure messages name the doc, the line and the block.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/probes/registry';
import { unknownFragmentFields, validateObject, type K8sObject } from '../deploy/k8s-fields';
import { SECRETS } from '../deploy/pods';
import { runPointed, runUntilReady, startStandIns, type StandIns } from '../deploy/stand-ins';
import { kustomize } from '../deploy/support';
import { startDnsServer } from '../helpers/dns-server';
import { DATABASE_URL, freePort, REDIS_URL, startHttpServer, type TestHttpServer } from '../helpers/servers';
import { get } from '../helpers/http';
import { ensureBuilt, ROOT } from '../helpers/paths';

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

interface Block {
  doc: string;
  /** line of the opening fence (1-based) */
  line: number;
  lang: string;
  text: string;
  marker?: string;
  where: string;
}

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(Math.min(indent, /^\s*/.exec(lines[i]!)![0].length)));
    let j = start - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const marker = j >= 0 ? /^\s*<!-- doc-test: (.*?) -->\s*$/.exec(lines[j]!)?.[1] : undefined;
    const lang = open[2] || 'text';
    out.push({ doc, line: start + 1, lang, text: `${body.join('\n')}\n`, marker, where: `${doc}:${start + 1} (\`\`\`${lang} block${marker ? `, doc-test: ${marker}` : ''})` });
  }
  return out;
}

const ALL = DOCS.flatMap(blocksOf);
const withReason = (marker: string | undefined, kind: string) => new RegExp(`^${kind} \\((.+)\\)$`).exec(marker ?? '')?.[1];

/** The variables a reader of the docs sets for examples that reference them without a default. */
const DOC_ENV: Record<string, string> = {
  HEALTH_ADMIN_KEY: 'doc-admin-key-0123456789',
  REDIS_URL,
  DATABASE_URL,
  STANDBY_URL: DATABASE_URL,
  STATE_REDIS_URL: REDIS_URL,
  WEBHOOK_SECRET: 'doc-webhook-secret',
  SLACK_WEBHOOK_URL: 'https://hooks.example.com/slack',
  SMTP_PASSWORD: 'doc-smtp-password',
  SHARD_COUNT: '3',
  BROKER_HOST: '127.0.0.1',
};
/** `${file:/path}` → a temp file with plausible content (the loader reads it; never a real path of this machine). */
let fileDir: string;
const docFile = (path: string) => join(fileDir, path.replace(/[^A-Za-z0-9.-]/g, '_'));
function withFiles(text: string): string {
  return text.replace(/\$\{file:([^}]+)\}/g, (_m, path: string) => {
    const local = docFile(path);
    writeFileSync(local, `secret-from-${path.replace(/\W/g, '-')}-0123456789`);
    return `\${file:${local}}`;
  });
}

function load(block: Block, env: Record<string, string>) {
  return parseConfig(withFiles(block.text), block.where, { env });
}

let standIns: StandIns;
let okApp: TestHttpServer;
let broker: import('node:net').Server;
let dns: { port: number; close(): Promise<void> };
let env: Record<string, string>;
before(async () => {
  ensureBuilt();
  fileDir = mkdtempSync(join(tmpdir(), 'doc-files-'));
  standIns = await startStandIns();
  // a generic app whose /healthz answers `ok` (as Kubernetes components do): the 127.0.0.1:8080 of the config examples
  okApp = await startHttpServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : 'ok');
  });
  standIns.route('http://127.0.0.1:8080', okApp.url);
  standIns.route('http://api:8080', okApp.url);
  standIns.route('http://shop.internal:8080', okApp.url);
  const net = await import('node:net');
  broker = net.createServer((s) => s.on('error', () => {}).end());
  await new Promise<void>((r) => broker.listen(0, '127.0.0.1', r));
  standIns.route('tcp://mail.internal:587', `tcp://127.0.0.1:${(broker.address() as import('node:net').AddressInfo).port}`);
  // the cluster DNS of the dns example: kubernetes.default.svc.cluster.local → the API server's Service IP
  dns = await startDnsServer({ 'kubernetes.default.svc.cluster.local A': { records: [{ address: '10.96.0.1' }] } });
  env = { ...DOC_ENV, BROKER_PORT: String((broker.address() as import('node:net').AddressInfo).port) };
});
after(async () => {
  await standIns?.close();
  await okApp?.close();
  broker?.close();
  await dns?.close();
  rmSync(fileDir, { recursive: true, force: true });
});

describe('docs: every fenced block is checked', () => {
  test('every block has a kind this test checks (markers name one)', () => {
    const known = /^(config( not-run \(.+\))?|fragment \S+|k8s Container|file \S+|webhook-payload|run|cluster|not-run \(.+\))$/;
    const problems = ALL.filter((b) => b.marker !== undefined && !known.test(b.marker)).map((b) => `${b.where}: unknown marker`);
    problems.push(...ALL.filter((b) => b.lang === 'sh' && !b.marker).map((b) => `${b.where}: a command block needs <!-- doc-test: run --> (run here), cluster (needs a cluster or Docker) or not-run (why)`));
    assert.deepEqual(problems, []);
    assert.ok(ALL.length > 40, `only ${ALL.length} blocks found: the extractor is broken`);
  });
});

describe('docs: YAML sidecar configs load and, where their targets have stand-ins, run to ready', () => {
  const configs = ALL.filter((b) => b.lang === 'yaml' && (b.marker === undefined || b.marker.startsWith('config') || (b.marker.startsWith('file ') && !/^(apiVersion|kind):/m.test(b.text))));
  test('there are config examples in every doc that shows config', () => {
    for (const doc of ['docs/configuration.md', 'docs/probes.md', 'docs/notifications.md', 'docs/security.md', 'docs/quickstart.md']) assert.ok(configs.some((b) => b.doc === doc), `no config example found in ${doc}`);
  });
  for (const block of configs) {
    const notRun = withReason(block.marker, 'config not-run');
    test(`${block.where}: loads${notRun ? ` (not run: ${notRun})` : ', runs to ready with every check UP'}`, async () => {
      const config = load(block, env);
      assert.deepEqual(config.skipped.map((s) => `${s.name}: ${s.reason}`), [], `${block.where}: no check skipped with the documented variables set`);
      if (notRun) return;
      const text = withFiles(block.text).replace(/resolver: 10\.96\.0\.10\b/, `resolver: 127.0.0.1:${dns.port}`);
      const sidecar = await runUntilReady(standIns, block.where, text, env);
      try {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const health = JSON.parse((await get(sidecar.port, '/health')).body) as { checks: Record<string, { status: string }> };
          const states = Object.entries(health.checks).map(([name, c]) => `${name}=${c.status}`);
          if (states.every((s) => s.endsWith('=UP'))) break;
          assert.ok(!states.some((s) => s.endsWith('=DOWN')) && Date.now() < deadline, `${block.where}: every check UP against its stand-in, got ${states.join(', ')}\n${(await get(sidecar.port, '/readyz?verbose')).body}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await sidecar.stop();
      }
    });
  }
});

describe('docs: other YAML and JSON blocks', () => {
  /** `needle` appears in `haystack`: every key/element of it, recursively, at the top or at any depth. */
  const subset = (a: unknown, b: unknown): boolean => {
    if (Array.isArray(a)) return Array.isArray(b) && a.every((x) => b.some((y) => subset(x, y)));
    if (a && typeof a === 'object') return !!b && typeof b === 'object' && !Array.isArray(b) && Object.entries(a).every(([k, v]) => subset(v, (b as Record<string, unknown>)[k]));
    return a === b;
  };
  const contains = (haystack: unknown, needle: unknown): boolean => subset(needle, haystack) || (!!haystack && typeof haystack === 'object' && Object.values(haystack).some((v) => contains(v, needle)));

  for (const block of ALL.filter((b) => b.marker?.startsWith('fragment '))) {
    test(`${block.where}: is what the file says`, () => {
      const file = block.marker!.slice('fragment '.length);
      assert.ok(existsSync(join(ROOT, file)), `${block.where}: ${file} does not exist`);
      const fragment = parse(block.text) as unknown;
      const docs = parseAllDocuments(readFileSync(join(ROOT, file), 'utf8')).map((d) => d.toJS() as unknown);
      assert.ok(docs.some((d) => contains(d, fragment)), `${block.where}: this block is not (or no longer) in ${file}`);
    });
  }

  for (const block of ALL.filter((b) => b.marker === 'k8s Container')) {
    test(`${block.where}: Kubernetes container fields, none unknown`, () => {
      assert.deepEqual(unknownFragmentFields(parse(block.text), 'Container'), [], block.where);
    });
  }

  for (const block of ALL.filter((b) => b.lang === 'json')) {
    test(`${block.where}: parses${block.marker === 'webhook-payload' ? ', and has the shape of a real webhook delivery' : ''}`, async () => {
      let example: Record<string, unknown>;
      try {
        example = JSON.parse(block.text) as Record<string, unknown>;
      } catch (err) {
        assert.fail(`${block.where}: not JSON: ${(err as Error).message}`);
      }
      if (block.marker !== 'webhook-payload') return;
      const closed = await freePort(); // nothing listens: the check goes DOWN at its first run
      standIns.route(`tcp://127.0.0.1:${closed}`, `tcp://127.0.0.1:${closed}`);
      const config = `telemetry: { serviceName: checkout-health }\nchecks:\n  - { name: db, kind: tcp, url: "tcp://127.0.0.1:${closed}", thresholds: { failure: 1 }, retry: { attempts: 1 } }\nnotifications:\n  - { name: oncall, kind: webhook, url: "https://hooks.example.com/health", secret: "\${WEBHOOK_SECRET}" }\n`;
      const before = standIns.webhooks.length;
      const sidecar = await runPointed(standIns, `${block.where} delivery`, config, env);
      try {
        const deadline = Date.now() + 30_000;
        while (standIns.webhooks.length === before) {
          assert.ok(Date.now() < deadline, `a webhook delivery arrives:\n${sidecar.lines.slice(-20).join('\n')}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await sidecar.stop();
      }
      const real = JSON.parse(standIns.webhooks.at(-1)!.body) as Record<string, unknown>;
      const shape = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === null ? 'null' : typeof v]).sort());
      assert.deepEqual(shape(example), shape(real), `${block.where}: the documented payload's keys and value types = a real delivery's (${JSON.stringify(real)})`);
      assert.match(String(standIns.webhooks.at(-1)!.headers['x-signature-256']), /^sha256=[0-9a-f]{64}$/);
    });
  }

  test('every promql block is valid PromQL (promtool check rules)', () => {
    const exprs = ALL.filter((b) => b.lang === 'promql').flatMap((b) => b.text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).map((expr) => ({ expr, where: b.where })));
    assert.ok(exprs.length > 0);
    const dir = mkdtempSync(join(tmpdir(), 'doc-promql-'));
    try {
      for (const [i, { expr, where }] of exprs.entries()) {
        writeFileSync(join(dir, 'r.yaml'), JSON.stringify({ groups: [{ name: 'doc', rules: [{ record: `doc:expr${i}`, expr }] }] }));
        const result = spawnSync('promtool', ['check', 'rules', join(dir, 'r.yaml')], { encoding: 'utf8' });
        assert.equal(result.error, undefined, 'promtool is required (Debian package "prometheus")');
        assert.equal(result.status, 0, `${where}: ${expr}\n${result.stdout}${result.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Commands of a block: `\` continuations joined, blank lines and comment lines dropped. */
function commands(block: Block): string[] {
  return block.text.replace(/\\\n\s*/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
}

describe('docs: command blocks', () => {
  const workspace = mkdtempSync(join(tmpdir(), 'doc-workspace-'));
  for (const entry of ['config', 'deploy', 'dist', 'node_modules', 'src', 'package.json', 'package-lock.json', 'tsconfig.json', 'Dockerfile', 'scripts']) symlinkSync(join(ROOT, entry), join(workspace, entry));
  after(() => rmSync(workspace, { recursive: true, force: true }));

  // the walkthrough's files, as the docs show them
  for (const block of ALL.filter((b) => b.marker?.startsWith('file '))) {
    const path = block.marker!.slice('file '.length);
    mkdirSync(dirname(join(workspace, path)), { recursive: true });
    // the component at its release tag → the same directory in this checkout (no network here)
    const text = block.text.replace(/https:\/\/github\.com\/otel-health-sidecar\/otel-health-sidecar\/\/(deploy\/kustomize\/components\/[\w/-]+)\?ref=v[\d.]+/g, (_m, dir: string) => relative(dirname(join(workspace, path)), join(workspace, dir)));
    writeFileSync(join(workspace, path), text);
  }

  // identical blocks (the README's quick start is the quickstart's first step) are run once, named together
  const runBlocks = new Map<string, Block[]>();
  for (const block of ALL.filter((b) => b.marker === 'run')) runBlocks.set(block.text, [...(runBlocks.get(block.text) ?? []), block]);
  for (const [, same] of runBlocks) {
    const block = { ...same[0]!, where: same.map((b) => b.where).join(' = ') };
    test(`${block.where}: every command runs here`, async () => {
      const background: ChildProcess[] = [];
      let port: number | undefined;
      try {
        for (const raw of commands(block)) {
          let line = raw.replace(/^health-sidecar /, 'node dist/cli.js ');
          if (port !== undefined) line = line.replace(/localhost:9464/g, `localhost:${port}`);
          const what = `${block.where}: \`${raw}\``;
          if (/\bnpm start\b/.test(line)) {
            port = await freePort();
            const child = spawn('bash', ['-c', line], { cwd: workspace, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DRAIN_DELAY: '0s', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
            let out = '';
            child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
            background.push(child);
            const deadline = Date.now() + 180_000; // npm start builds first
            for (;;) {
              if ((await get(port, '/readyz').catch(() => undefined))?.status === 200) break;
              assert.ok(child.exitCode === null && Date.now() < deadline, `${what}: never ready\n${out}`);
              await new Promise((r) => setTimeout(r, 100));
            }
            continue;
          }
          const kustomizeDir = /^kubectl kustomize (\S+)$/.exec(line)?.[1];
          if (kustomizeDir) {
            const objects = kustomize(join(workspace, kustomizeDir)).filter((o: K8sObject) => !o.kind.startsWith('Kustomiz'));
            assert.ok(objects.length > 0, `${what}: renders objects`);
            assert.deepEqual(objects.flatMap(validateObject), [], what);
            continue;
          }
          const result = spawnSync('bash', ['-c', line], { cwd: workspace, encoding: 'utf8', timeout: 120_000, env: { ...process.env } });
          assert.equal(result.status, 0, `${what} exited ${result.status}:\n${result.stdout}${result.stderr}`);
          const url = /^curl\b.*?'?(localhost:\d+\/[^'\s]*)'?/.exec(line)?.[1];
          if (url) {
            const u = new URL(`http://${url}`);
            const answer = await get(Number(u.port), `${u.pathname}${u.search}`);
            assert.ok(answer.status >= 200 && answer.status < 300, `${what}: answered ${answer.status}: ${answer.body}`);
          }
        }
      } finally {
        for (const child of background) {
          if (child.exitCode === null) {
            process.kill(-child.pid!, 'SIGTERM');
            await new Promise((r) => child.once('exit', r));
          }
        }
      }
    });
  }

  test('`cluster` blocks: every directory, file and Dockerfile they name exists and renders; the Secrets they create are the ones the manifests read', () => {
    const problems: string[] = [];
    const created = new Map<string, Set<string>>();
    for (const block of ALL.filter((b) => b.marker === 'cluster')) {
      for (const line of commands(block)) {
        const at = `${block.where}: \`${line.trim()}\``;
        for (const m of line.matchAll(/(?:apply|kustomize|delete) -k (\S+)/g)) {
          try {
            const objects = kustomize(join(workspace, m[1]!));
            problems.push(...objects.flatMap(validateObject).map((p) => `${at}: ${p}`));
          } catch (err) {
            problems.push(`${at}: ${(err as Error).message}`);
          }
        }
        for (const m of line.matchAll(/ -f (\S+)/g)) {
          if (!existsSync(join(workspace, m[1]!))) problems.push(`${at}: ${m[1]} does not exist`);
          else if (m[1]!.endsWith('.yaml') && line.startsWith('kubectl')) problems.push(...parseAllDocuments(readFileSync(join(workspace, m[1]!), 'utf8')).map((d) => d.toJS() as K8sObject).flatMap(validateObject).map((p) => `${at}: ${p}`));
        }
        if (/^docker build\b.* \.$/.test(line.trim()) && !existsSync(join(ROOT, 'Dockerfile'))) problems.push(`${at}: no Dockerfile`);
        const secret = /kubectl create secret generic (\S+)(.*)$/.exec(line);
        if (secret) {
          const keys = created.get(secret[1]!) ?? new Set<string>();
          for (const k of secret[2]!.matchAll(/--from-literal=([\w.-]+)=/g)) keys.add(k[1]!);
          created.set(secret[1]!, keys);
        }
      }
    }
    assert.deepEqual(problems, []);
    const documented = Object.fromEntries([...created].map(([name, keys]) => [name, [...keys].sort()]).sort());
    const read = Object.fromEntries(Object.entries(SECRETS).map(([name, keys]) => [name, Object.keys(keys).sort()]).sort());
    assert.deepEqual(documented, read, 'the docs create exactly the Secrets and keys the manifests read (test/deploy/pods.ts SECRETS, used to run them)');
  });
});

describe('docs: links and paths', () => {
  /** GitHub's heading anchors: lower case, punctuation dropped, spaces → '-', repeats get -1, -2 … */
  const anchorsOf = (file: string): Set<string> => {
    const seen = new Map<string, number>();
    const out = new Set<string>();
    let fenced = false;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (/^\s*```/.test(line)) fenced = !fenced;
      const h = !fenced && /^#{1,6}\s+(.*)$/.exec(line);
      if (!h) continue;
      const base = h[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.add(n ? `${base}-${n}` : base);
    }
    return out;
  };
  /** prose only: fenced blocks blanked */
  const prose = (text: string) => {
    let fenced = false;
    return text.split('\n').map((line, i) => {
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        return { line: i + 1, text: '' };
      }
      return { line: i + 1, text: fenced ? '' : line };
    });
  };

  function linkProblems(doc: string, text: string): string[] {
    const problems: string[] = [];
    for (const { line, text: l } of prose(text)) {
      for (const m of l.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z+.-]*:/i.test(target)) {
          if (!/^(https?|mailto):/.test(target)) problems.push(`${doc}:${line}: link ${target}: only http(s) and mailto outside the repository`);
          continue;
        }
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path ? resolve(dirname(join(ROOT, doc)), path) : join(ROOT, doc);
        if (relative(ROOT, file).startsWith('..')) {
          problems.push(`${doc}:${line}: link ${target} leaves the repository (a clone has nothing there)`);
          continue;
        }
        if (!existsSync(file)) {
          problems.push(`${doc}:${line}: link ${target}: ${relative(ROOT, file)} does not exist`);
          continue;
        }
        if (anchor && file.endsWith('.md') && !anchorsOf(file).has(anchor)) problems.push(`${doc}:${line}: link ${target}: no heading "#${anchor}" in ${relative(ROOT, file)}`);
      }
    }
    return problems;
  }

  function pathProblems(doc: string, text: string): string[] {
    const problems: string[] = [];
    for (const { line, text: l } of prose(text)) {
      for (const m of l.matchAll(/`((?:\.github|\.ci|bench|config|deploy|docs|scripts|src|test)\/[^`\s]*)`/g)) {
        const path = m[1]!.replace(/[:#].*$/, '');
        if (/[*{}<>]|\.\.\./.test(path)) continue; // a pattern, not a path
        if (!existsSync(join(ROOT, path))) problems.push(`${doc}:${line}: \`${m[1]}\` does not exist`);
      }
    }
    return problems;
  }

  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    test(`${doc}: every relative link resolves inside the repository (and its anchor to a heading); none leaves it`, () => {
      assert.deepEqual(linkProblems(doc, text), []);
    });
    test(`${doc}: every repository path in backticks exists`, () => {
      assert.deepEqual(pathProblems(doc, text), []);
    });
  }

  test('the checkers catch what they are for', () => {
    const text = 'See [the spec](../shared/SPEC.md), [old](docs/deploy.md#28-nope), [gone](docs/nope.md), [ok](docs/probes.md#dns-resolve-a-name) and `deploy/prometheus/podmonitor.yaml`.\n```sh\n[x](../nowhere.md) `src/nope.ts`\n```\n';
    assert.deepEqual(linkProblems('README.md', text), [
      'README.md:1: link ../shared/SPEC.md leaves the repository (a clone has nothing there)',
      'README.md:1: link docs/deploy.md#28-nope: no heading "#28-nope" in docs/deploy.md',
      'README.md:1: link docs/nope.md: docs/nope.md does not exist',
    ]);
    assert.deepEqual(pathProblems('README.md', text), ['README.md:1: `deploy/prometheus/podmonitor.yaml` does not exist']);
  });
});
