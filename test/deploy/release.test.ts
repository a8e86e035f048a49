/**
 * The release: .github/workflows/release.yml is parsed by GitHub's own
 * workflow parser (@actions/workflow-parser: schema and expressions) and then
 * checked for what a release must do — run on a version tag only, with the
 * least permissions, actions pinned to commits, the tag equal to the package
 * version, a multi-arch build pushed to ghcr.io with an SBOM and max-mode
 * provenance. And the image it publishes is the one everything names: every
 * reference to the image in deploy/, the docs and the Dockerfile's source
 * label is ghcr.io/<owner>/otel-health-sidecar:<package version>, one owner.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { DEPLOY, kustomizations, kustomize, parseDockerfile, readText } from './support';
import { ROOT } from '../helpers/paths';

const pkg = JSON.parse(readText('package.json')) as { name: string; version: string };
const WORKFLOW = '.github/workflows/release.yml';
const workflowText = readText(WORKFLOW);

type Step = { id?: string; name?: string; uses?: string; run?: string; with?: Record<string, string | boolean>; env?: Record<string, string> };
type Workflow = { on: Record<string, unknown>; permissions: Record<string, string>; jobs: Record<string, { permissions?: Record<string, string>; steps: Step[] }> };
const workflow = parse(workflowText) as Workflow;
const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
const action = (name: string) => {
  const found = steps.filter((s) => s.uses?.startsWith(`${name}@`));
  assert.equal(found.length, 1, `exactly one step uses ${name}`);
  return found[0]!;
};

/** The owner of the repository and image, from the Dockerfile's OCI source label. */
function owner(): string {
  const labels = parseDockerfile(readText('Dockerfile')).stages.at(-1)!.instructions.filter((i) => i.keyword === 'LABEL').map((i) => i.args).join(' ');
  const source = /org\.opencontainers\.image\.source="https:\/\/github\.com\/([^/"]+)\/([^/"]+)"/.exec(labels);
  assert.ok(source, 'the Dockerfile labels org.opencontainers.image.source with the GitHub repository');
  assert.equal(source[2], pkg.name, 'the repository is named as the package');
  return source[1]!;
}

function files(dir: string, exts: RegExp): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = join(dir, entry);
    if (entry === 'node_modules' || entry.startsWith('.doc-test')) return [];
    return statSync(full).isDirectory() ? files(full, exts) : exts.test(entry) ? [full] : [];
  });
}

describe('release workflow', () => {
  test('GitHub\'s workflow parser accepts it (schema, expressions), and rejects a broken copy', async () => {
    const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import('@actions/workflow-parser');
    const check = async (content: string) => {
      const parsed = parseWorkflow({ name: WORKFLOW, content }, new NoOperationTraceWriter());
      const errors = parsed.context.errors.getErrors().map((e) => e.message);
      if (parsed.value) await convertWorkflowTemplate(parsed.context, parsed.value);
      return [...errors, ...parsed.context.errors.getErrors().map((e) => e.message)];
    };
    assert.deepEqual(await check(workflowText), []);
    assert.notDeepEqual(await check(workflowText.replace('    steps:', '    stepz:')), [], 'the parser bites');
  });

  test('runs on a version tag only — no branch, pull request or manual run publishes', () => {
    assert.deepEqual(Object.keys(workflow.on), ['push']);
    assert.deepEqual(workflow.on.push, { tags: ['v[0-9]+.[0-9]+.[0-9]+'] });
  });

  test('least privilege: read-only by default; the image job may also write packages, nothing else', () => {
    assert.deepEqual(workflow.permissions, { contents: 'read' });
    assert.deepEqual(Object.values(workflow.jobs).map((j) => j.permissions), [{ contents: 'read', packages: 'write' }]);
  });

  test('every action is pinned to a commit, its release tag in a comment', () => {
    const uses = workflowText.split('\n').filter((l) => /^\s*-?\s*uses:/.test(l));
    assert.ok(uses.length >= 6);
    for (const line of uses) assert.match(line, /uses: [\w-]+\/[\w-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, line.trim());
  });

  test('the tag must be the package version before anything is built', () => {
    const index = steps.findIndex((s) => s.run?.includes("require('./package.json').version"));
    assert.ok(index > 0, 'a step compares the tag with package.json');
    assert.match(steps[index]!.run!, /"v\$version" != "\$GITHUB_REF_NAME"[\s\S]*exit 1/);
    assert.ok(index < steps.findIndex((s) => s.uses?.startsWith('docker/build-push-action@')));
  });

  test('multi-arch image pushed to ghcr.io/<owner>/otel-health-sidecar:<version>, with SBOM and provenance (mode=max)', () => {
    const login = action('docker/login-action');
    assert.deepEqual(login.with, { registry: 'ghcr.io', username: '${{ github.actor }}', password: '${{ secrets.GITHUB_TOKEN }}' });
    const meta = action('docker/metadata-action');
    assert.equal(meta.with!.images, `ghcr.io/\${{ github.repository_owner }}/${pkg.name}`);
    assert.match(String(meta.with!.tags), /^type=semver,pattern=\{\{version\}\}$/m, 'the tag v1.2.3 → image tag 1.2.3, as the manifests name it');
    assert.equal(meta.env?.DOCKER_METADATA_ANNOTATIONS_LEVELS, 'manifest,index');
    action('docker/setup-qemu-action');
    action('docker/setup-buildx-action');
    const build = action('docker/build-push-action');
    assert.deepEqual(String(build.with!.platforms).split(',').sort(), ['linux/amd64', 'linux/arm64']);
    assert.equal(build.with!.push, true);
    assert.equal(build.with!.sbom, true);
    assert.equal(build.with!.provenance, 'mode=max');
    assert.equal(build.with!.context, '.');
    for (const output of ['tags', 'labels', 'annotations']) assert.equal(build.with![output], `\${{ steps.meta.outputs.${output} }}`);
    assert.match(String(build.with!['build-args']), /^VERSION=\$\{\{ steps\.meta\.outputs\.version \}\}$/m, 'the Dockerfile\'s version label gets the released version');
  });
});

describe('one image reference everywhere', () => {
  const expected = `ghcr.io/${owner()}/${pkg.name}:${pkg.version}`;

  test(`every reference in deploy/, README.md and docs/ is ${expected}`, () => {
    const problems: string[] = [];
    let found = 0;
    for (const file of [...files(DEPLOY, /\.(ya?ml|json|md)$/), join(ROOT, 'README.md'), ...files(join(ROOT, 'docs'), /\.md$/)]) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        for (const m of line.matchAll(/[\w.-]+\/[\w.-]+\/otel-health-sidecar(?::[\w.${}-]+)?/g)) {
          if (m[0].startsWith('github.com/')) continue;
          found++;
          if (m[0] !== expected) problems.push(`${relative(ROOT, file)}:${i + 1}: ${m[0]} (expected ${expected})`);
        }
      });
    }
    assert.deepEqual(problems, []);
    assert.ok(found >= 4, `only ${found} references found: the scan is broken`);
  });

  test('every rendered container running the sidecar image uses exactly that reference', () => {
    let containers = 0;
    for (const dir of kustomizations()) {
      for (const obj of kustomize(dir)) {
        const pod = (obj as { spec?: { template?: { spec?: { containers?: { image: string }[]; initContainers?: { image: string }[] } } } }).spec?.template?.spec;
        for (const c of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])].filter((x) => x.image.includes(`/${pkg.name}:`))) {
          containers++;
          assert.equal(c.image, expected, `${relative(ROOT, dir)} ${obj.kind}/${obj.metadata.name}`);
        }
      }
    }
    assert.ok(containers >= 3, 'the sample base and both monitors');
  });

  test('the component URL in the docs is this repository at the release tag v<version>', () => {
    const docs = [join(ROOT, 'README.md'), ...files(join(ROOT, 'docs'), /\.md$/), ...files(DEPLOY, /\.ya?ml$/)].map((f) => readFileSync(f, 'utf8')).join('\n');
    const urls = [...docs.matchAll(/github\.com\/([\w.-]+)\/([\w.-]+)\/\/?deploy\/kustomize\/components\/[\w/-]+\?ref=(v[\w.]+)/g)];
    assert.ok(urls.length >= 2, 'the quickstart and the component name the remote URL');
    for (const [url, o, repo, ref] of urls) assert.deepEqual([o, repo, ref], [owner(), pkg.name, `v${pkg.version}`], url);
  });
});
