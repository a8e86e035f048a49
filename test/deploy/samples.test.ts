/**
 * Every sample config is run, as shipped, by the compiled CLI against stand-ins
 * that answer as the real services do, and must reach ready (/readyz 200) with
 * every check UP:
 * - config/sidecar.yaml and every file of config/examples/;
 * - every sidecar config mounted from a ConfigMap in the kustomizations under
 *   deploy/kustomize (rendered by `kubectl kustomize`), with exactly the env
 *   the pod's container gets (env, envFrom, downward API; the Secrets the docs
 *   tell you to create) — the sharded monitor once per StatefulSet ordinal;
 * - the compose file's sidecar (its mounted file and environment).
 * The sample app is podinfo (test/helpers/podinfo.ts says where its answers
 * come from); the defect this guards against: a config that expected
 * `bodyContains: ok` from podinfo, which answers `{"status": "OK"}`, so in a
 * real cluster the startup probe never passed.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { PODINFO_OK_BODY } from '../helpers/podinfo';
import { get, request } from '../helpers/http';
import { containerEnv, mountedConfigs } from './pods';
import { DEPLOY, kustomizations, kustomize } from './support';
import { runUntilReady, startStandIns, type StandIns } from './stand-ins';
import { ROOT } from '../helpers/paths';

type ProbedContainer = { name: string; ports?: { name: string; containerPort: number }[] } & Partial<Record<'startupProbe' | 'readinessProbe' | 'livenessProbe', { httpGet?: { path: string; port: number | string } }>>;

let standIns: StandIns;
before(async () => {
  standIns = await startStandIns();
});
after(async () => {
  await standIns?.close();
});

type HealthBody = { status: string; checks: Record<string, { status: string }> };

/** /health once every check has its first result (a check outside `ready` may still be UNKNOWN when /readyz turns 200). */
async function settledHealth(port: number, where: string): Promise<HealthBody> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const body = JSON.parse((await get(port, '/health')).body) as HealthBody;
    if (!Object.values(body.checks).some((c) => c.status === 'UNKNOWN')) return body;
    assert.ok(Date.now() < deadline, `${where}: a check never got a first result: ${JSON.stringify(body.checks)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function assertAllUp(port: number, where: string, expected?: string[]): Promise<void> {
  const body = await settledHealth(port, where);
  if (expected) assert.deepEqual(Object.keys(body.checks).sort(), [...expected].sort(), `${where}: the checks that run`);
  assert.ok(Object.keys(body.checks).length > 0, `${where}: runs checks`);
  for (const [name, check] of Object.entries(body.checks)) assert.equal(check.status, 'UP', `${where}: check ${name} is UP`);
  // not the overall status: a check UP but slower than its latency.warnAbove (a busy machine) makes it DEGRADED, still ready
  assert.ok(['UP', 'DEGRADED'].includes(body.status), `${where}: overall ${body.status}`);
}

describe('the podinfo stand-in answers as podinfo 6.7.1 does', () => {
  const raw = (port: number, method: string, path: string) => request(port, path, { method });

  test('GET /healthz and /readyz: 200 {"status": "OK"} pretty-printed; 503 empty once failing; /readyz/disable and /readyz/enable', async () => {
    const { podinfo } = standIns;
    for (const path of ['/healthz', '/readyz']) {
      const ok = await raw(podinfo.port, 'GET', path);
      assert.equal(ok.status, 200);
      assert.equal(ok.body, '{\n  "status": "OK"\n}');
      assert.equal(ok.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(ok.headers['x-content-type-options'], 'nosniff');
      assert.equal((await raw(podinfo.port, 'HEAD', path)).status, 405, 'GET only (gorilla/mux Methods("GET"))');
    }
    assert.equal((await raw(podinfo.port, 'POST', '/readyz/disable')).status, 202);
    assert.deepEqual(await raw(podinfo.port, 'GET', '/readyz').then((r) => [r.status, r.body]), [503, '']);
    assert.equal((await raw(podinfo.port, 'GET', '/healthz')).status, 200, 'liveness unaffected');
    assert.equal((await raw(podinfo.port, 'POST', '/readyz/enable')).status, 202);
    assert.equal((await raw(podinfo.port, 'GET', '/readyz')).status, 200);
    assert.deepEqual(await raw(podinfo.port, 'GET', '/nope').then((r) => [r.status, r.body]), [404, '404 page not found\n']);
  });

  test('a config expecting `bodyContains: ok` (the old sample) never passes against podinfo; the shipped expectation does', async () => {
    const old = `checks:\n  - name: app\n    kind: http\n    url: http://127.0.0.1:9898/healthz\n    groups: [ready, startup]\n    expect: { status: ["200-299"], bodyContains: ok }\n`;
    await assert.rejects(runUntilReady(standIns, 'old-sample', old, {}, 4000), /\/readyz never answered 200[\s\S]*body does not contain/);
    const shipped = parse(readFileSync(join(ROOT, 'config/examples/web-app.yaml'), 'utf8')) as { checks: { name: string; expect?: { bodyRegex?: string; bodyContains?: string } }[] };
    for (const check of shipped.checks.filter((c) => c.name.startsWith('app'))) {
      assert.ok(check.expect?.bodyRegex, `${check.name} checks the body`);
      assert.match(PODINFO_OK_BODY, new RegExp(check.expect.bodyRegex));
      assert.doesNotMatch('', new RegExp(check.expect.bodyRegex), 'the empty 503 body does not pass');
    }
  });
});

describe('every sample config reaches ready against stand-ins', () => {
  const files = ['config/sidecar.yaml', ...readdirSync(join(ROOT, 'config/examples')).filter((f) => f.endsWith('.yaml')).sort().map((f) => `config/examples/${f}`)];
  /** The variables each file documents (its header comment or docs/configuration.md). */
  const documentedEnv: Record<string, Record<string, string>> = {
    'config/sidecar.yaml': { APP_URL: 'http://127.0.0.1:9898/healthz', REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' },
    'config/examples/minimal.yaml': {},
    'config/examples/web-app.yaml': { HEALTH_ADMIN_KEY: 'admin-key-0123456789abcdef', REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' },
    'config/examples/standalone-monitor.yaml': {},
  };
  const expectedChecks: Record<string, string[]> = {
    'config/sidecar.yaml': ['self', 'app', 'cache', 'db'],
    'config/examples/minimal.yaml': ['app'],
    'config/examples/web-app.yaml': ['app', 'app-ready', 'cache', 'db'],
    'config/examples/standalone-monitor.yaml': ['www', 'api', 'docs', 'status-page', 'smtp', 'ldap'],
  };

  test('the list of sample files is the one this test knows', () => {
    assert.deepEqual(files.filter((f) => !(f in documentedEnv)), [], 'a new sample file: say here which variables it documents and which checks run');
  });

  for (const file of files) {
    test(`${file}: ready, every check UP`, async () => {
      const sidecar = await runUntilReady(standIns, file, readFileSync(join(ROOT, file), 'utf8'), documentedEnv[file] ?? {});
      try {
        await assertAllUp(sidecar.port, file, expectedChecks[file]!);
      } finally {
        assert.equal((await sidecar.stop()).code, 0);
      }
    });
  }

  test('the kustomize base runs config/examples/web-app.yaml (kustomize cannot read outside its directory)', () => {
    assert.equal(readFileSync(join(DEPLOY, 'kustomize/base/sidecar.yaml'), 'utf8'), readFileSync(join(ROOT, 'config/examples/web-app.yaml'), 'utf8'));
    assert.equal(readFileSync(join(DEPLOY, 'kustomize/overlays/standalone-monitor/sidecar.yaml'), 'utf8'), readFileSync(join(ROOT, 'config/examples/standalone-monitor.yaml'), 'utf8'));
  });

  for (const dir of [...kustomizations(), join(ROOT, 'test/fixtures/kustomize/shop')]) {
    const name = dir.slice(ROOT.length + 1);
    test(`${name}: every mounted sidecar config, with the pod's env, reaches ready (per StatefulSet ordinal)`, async () => {
      const objects = kustomize(dir);
      const mounted = mountedConfigs(objects);
      if (name === 'deploy/otel-collector') return assert.equal(mounted.length, 0, 'the collector runs no sidecar config');
      assert.ok(mounted.length > 0, `${name} mounts a sidecar config`);
      for (const m of mounted) {
        const replicas = m.workload.kind === 'StatefulSet' ? (m.workload.spec as { replicas?: number }).replicas ?? 1 : 1;
        for (let ordinal = 0; ordinal < replicas; ordinal++) {
          const podName = m.workload.kind === 'StatefulSet' ? `${m.workload.metadata.name}-${ordinal}` : `${m.workload.metadata.name}-7c9f8d6b5-x2x9z`;
          const where = `${name} ConfigMap/${m.configMap} in ${m.workload.kind}/${m.workload.metadata.name} pod ${podName}`;
          const env = containerEnv(objects, m.container, podName);
          // run as the container runs it: its options after the config file too (--probe-port)
          const args = m.container.args ?? [];
          const flags = args.slice(args.indexOf('--config') + 2);
          const sidecar = await runUntilReady(standIns, where, m.text, env, undefined, flags);
          try {
            await assertAllUp(sidecar.port, where);
            // every kubelet probe in the pod that asks one of the sidecar's ports gets 200 from it there
            const pod = m.workload.spec.template.spec as { initContainers?: ProbedContainer[]; containers: ProbedContainer[] };
            const sidecarPorts = new Map((m.container as ProbedContainer).ports?.map((p) => [p.name, p.containerPort]) ?? []);
            const declaredProbePort = flags.includes('--probe-port') ? Number(flags[flags.indexOf('--probe-port') + 1]) : undefined;
            const actual = new Map<number | undefined, number | undefined>([[[...sidecarPorts.values()][0], sidecar.port], [declaredProbePort, sidecar.probePort]]);
            if (declaredProbePort !== undefined) assert.ok([...sidecarPorts.values()].includes(declaredProbePort), `${where}: the container declares its --probe-port ${declaredProbePort}`);
            let asked = 0;
            for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
              for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
                const get_ = probe?.httpGet;
                if (!get_) continue;
                const port = typeof get_.port === 'number' ? get_.port : c.name === m.container.name ? sidecarPorts.get(get_.port) : undefined;
                const target = port === undefined ? undefined : actual.get(port);
                if (target === undefined) continue;
                asked++;
                assert.equal((await get(target, get_.path)).status, 200, `${where}: ${c.name} probe ${get_.path} on :${port} answered 200 by the sidecar`);
              }
            }
            assert.ok(asked >= 1, `${where}: the pod's probes ask the sidecar`);
            const skipped = sidecar.records().filter((r) => typeof r.msg === 'string' && /skipped/.test(r.msg));
            assert.deepEqual(skipped.map((r) => r.msg), [], `${where}: nothing skipped with the env the pod gets`);
          } finally {
            assert.equal((await sidecar.stop()).code, 0);
          }
        }
      }
    });
  }

  test('deploy/compose.yaml: the sidecar service, its mounted file and environment, reaches ready', async () => {
    const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8')) as { services: Record<string, { environment?: Record<string, string>; volumes?: string[] }> };
    const sidecar = compose.services['health-sidecar']!;
    const mount = sidecar.volumes!.find((v) => v.split(':')[1] === '/etc/health-sidecar/sidecar.yaml')!;
    const file = join(DEPLOY, mount.split(':')[0]!);
    // compose interpolation: ${VAR:-default} with nothing set
    const env = Object.fromEntries(Object.entries(sidecar.environment!).map(([k, v]) => [k, v.replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));
    const running = await runUntilReady(standIns, 'deploy/compose.yaml health-sidecar', readFileSync(file, 'utf8'), env);
    try {
      await assertAllUp(running.port, 'compose', ['app', 'app-ready', 'cache', 'db']);
    } finally {
      assert.equal((await running.stop()).code, 0);
    }
  });

  test('the web-app sample follows podinfo: /readyz/disable unroutes (ready 503, live 200); shutdown fails both', async () => {
    const file = 'config/examples/web-app.yaml';
    const sidecar = await runUntilReady(standIns, file, readFileSync(join(ROOT, file), 'utf8'), documentedEnv[file]!);
    const waitFor = async (path: string, status: number) => {
      const deadline = Date.now() + 45_000; // live: 3 failed runs 5 s apart
      while ((await get(sidecar.port, path)).status !== status) {
        assert.ok(Date.now() < deadline, `${path} → ${status}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      standIns.podinfo.setReady(false);
      await waitFor('/readyz', 503);
      assert.equal((await get(sidecar.port, '/livez')).status, 200, 'the app is not restarted for asking to be unrouted');
      standIns.podinfo.setReady(true);
      await waitFor('/readyz', 200);
      standIns.podinfo.shutdown();
      await waitFor('/livez', 503);
      await waitFor('/readyz', 503);
    } finally {
      standIns.podinfo.setHealthy(true);
      standIns.podinfo.setReady(true);
      await sidecar.stop();
    }
  });
});
