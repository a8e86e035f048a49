/**
 * deploy/compose.yaml: parses as YAML, every mounted host path and the build
 * context exist, every depends_on names a service, published ports are unique
 * and match what the mounted configs listen on, and every hostname:port that
 * one config sends to (Prometheus targets, OTLP endpoints, Grafana datasources)
 * is a service of the stack. The sidecar's config is valid with the env the
 * compose file gives it, and none of its checks is skipped.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../../src/probes/registry';
import { DEPLOY, parseDockerfile, readText, words } from './support';
import { ROOT } from '../helpers/paths';

type Service = { image?: string; build?: { context: string; dockerfile: string }; environment?: Record<string, string>; volumes?: string[]; ports?: string[]; depends_on?: string[]; command?: string[]; user?: string; read_only?: boolean };
const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8')) as { name: string; services: Record<string, Service> };
const services = compose.services;
const hostPath = (volume: string) => resolve(DEPLOY, volume.split(':')[0]!);
const mountOf = (service: string, target: string) => services[service]!.volumes!.find((v) => v.split(':')[1] === target);
/** compose-style ${VAR:-default} interpolation (as docker compose does before starting) */
const interpolate = (value: string) => value.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_m, _name: string, def?: string) => def ?? '');

describe('docker compose stack', () => {
  test('the stack has the expected services, each with a pinned image or a build', () => {
    assert.deepEqual(Object.keys(services).sort(), ['app', 'grafana', 'health-sidecar', 'jaeger', 'otel-collector', 'postgres', 'prometheus', 'redis']);
    for (const [name, s] of Object.entries(services)) {
      assert.ok(s.image || s.build, `${name} has an image or a build`);
      if (s.image && !s.build) assert.match(s.image, /:[\w.-]+$/, `${name}: image tag pinned`);
      if (s.image) assert.doesNotMatch(s.image, /:latest$/, `${name}: not :latest`);
    }
  });

  test('every mounted host path and the build context exist; depends_on names real services', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) assert.ok(existsSync(hostPath(v)), `${name}: ${v.split(':')[0]} exists`);
      for (const d of s.depends_on ?? []) assert.ok(d in services, `${name} depends on ${d}, a service`);
      if (s.build) {
        assert.ok(existsSync(join(resolve(DEPLOY, s.build.context), s.build.dockerfile)), `${name}: build context and Dockerfile exist`);
      }
    }
  });

  test('published ports are unique and each maps a port the service listens on', () => {
    const published = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => p.split(':')[0]));
    assert.equal(new Set(published).size, published.length, `no host port published twice: ${published.join(', ')}`);
    for (const s of Object.values(services)) for (const p of s.ports ?? []) assert.match(p, /^\d+:\d+$/);
  });

  test('the sidecar runs the shipped web-app config with all checks enabled, on the port it publishes, as the image user', () => {
    const sidecar = services['health-sidecar']!;
    const runtimeCmd = parseDockerfile(readText('Dockerfile')).stages.at(-1)!.instructions.find((i) => i.keyword === 'CMD')!;
    const configPath = words(runtimeCmd.args).at(-1)!;
    const mount = mountOf('health-sidecar', configPath);
    assert.ok(mount, `config mounted at the image's default path ${configPath}`);
    assert.equal(hostPath(mount), join(ROOT, 'config/examples/web-app.yaml'));
    assert.ok(mount.endsWith(':ro'));
    const env = Object.fromEntries(Object.entries(sidecar.environment!).map(([k, v]) => [k, interpolate(v)]));
    const config = parseConfig(readFileSync(hostPath(mount), 'utf8'), 'web-app.yaml', { env });
    assert.deepEqual(config.skipped, []);
    assert.deepEqual(sidecar.ports, [`${config.server.port}:${config.server.port}`]);
    // every dependency a check talks to is a service of the stack, on the port that image listens on
    const listens: Record<string, number> = { app: 9898, redis: 6379, postgres: 5432 };
    for (const check of config.checks) {
      const url = new URL((check as { url: string }).url);
      assert.ok(url.hostname in services, `check ${check.name} → ${url.hostname} is a service`);
      assert.equal(Number(url.port), listens[url.hostname], `check ${check.name} port`);
      assert.ok(sidecar.depends_on!.includes(url.hostname), `the sidecar starts after ${url.hostname}`);
    }
    assert.equal(sidecar.user, '10001:10001');
    assert.equal(sidecar.read_only, true);
  });

  test('every hostname:port the configs send to is a service of the stack', () => {
    const collector = parse(readFileSync(hostPath(mountOf('otel-collector', '/etc/otelcol/config.yaml')!), 'utf8')) as { receivers: { otlp: { protocols: { http: { endpoint: string } } } }; exporters: Record<string, { endpoint: string }> };
    // sidecar → collector (OTLP/HTTP)
    const otlp = new URL(services['health-sidecar']!.environment!.OTEL_EXPORTER_OTLP_ENDPOINT!);
    assert.equal(otlp.hostname, 'otel-collector');
    assert.equal(otlp.port, collector.receivers.otlp.protocols.http.endpoint.split(':')[1]);
    // collector → jaeger (OTLP gRPC, enabled in the all-in-one image)
    assert.equal(collector.exporters['otlp/jaeger']!.endpoint, 'jaeger:4317');
    assert.equal(services.jaeger!.environment!.COLLECTOR_OTLP_ENABLED, 'true');
    // prometheus → sidecar and collector
    const promMount = mountOf('prometheus', '/etc/prometheus/prometheus.yml')!;
    const prom = parse(readFileSync(hostPath(promMount), 'utf8')) as { rule_files: string[]; scrape_configs: { static_configs: { targets: string[] }[] }[] };
    for (const target of prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets))) {
      const [host, port] = target.split(':');
      assert.ok(host! in services, `scrape target ${target} is a service`);
      assert.ok((services[host!]!.ports ?? []).some((p) => p.endsWith(`:${port}`)), `${host} listens on ${port}`);
    }
    // rule files referenced by prometheus.yml are mounted next to it
    for (const rules of prom.rule_files) assert.ok(mountOf('prometheus', `/etc/prometheus/${rules}`), `${rules} mounted`);
    // grafana → prometheus/jaeger; the dashboard is mounted where the provider looks
    const datasources = parse(readFileSync(join(DEPLOY, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: { url: string }[] };
    for (const ds of datasources.datasources) assert.ok(new URL(ds.url).hostname in services, `datasource ${ds.url}`);
    const provider = parse(readFileSync(join(DEPLOY, 'grafana/provisioning/dashboards/health-sidecar.yaml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const dashboard = services.grafana!.volumes!.find((v) => v.startsWith('./grafana/dashboard.json:'))!;
    assert.ok(dashboard.split(':')[1]!.startsWith(`${provider.providers[0]!.options.path}/`));
    assert.ok(mountOf('grafana', '/etc/grafana/provisioning'));
  });
});
