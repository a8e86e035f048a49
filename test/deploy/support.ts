/** Helpers for the deploy tests: Dockerfile/.dockerignore parsing, a small kustomize renderer, child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = resolve(__dirname, '../..');
export const DEPLOY = join(ROOT, 'deploy');

export function readText(path: string): string {
  return readFileSync(resolve(ROOT, path), 'utf8');
}

// ── Dockerfile ────────────────────────────────────────────────────────────

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

/** Instructions with line continuations joined and comments dropped. */
export function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start + 1}: cannot parse "${line}"`);
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile:${ins.line}: bad FROM`);
      stages.push({ image: m[1]!, name: m[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0) args.push(ins);
    else stages[stages.length - 1]!.instructions.push(ins);
  }
  return { args, stages };
}

/** JSON (exec) form or shell words, as the builder would split them. */
export function words(args: string): string[] {
  if (args.startsWith('[')) return JSON.parse(args) as string[];
  return args.split(/\s+/).filter(Boolean);
}

/** .dockerignore matcher (moby/patternmatcher semantics: last match wins, a match on a parent dir counts). */
export function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === '*' && pattern[i + 1] === '*') {
          i++;
          if (pattern[i + 1] === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, regex: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (candidates.some((c) => rule.regex.test(c))) excluded = !rule.negate;
    return excluded;
  };
}

// ── kustomize (the subset this repo uses; anything else is an error) ───────

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

const SUPPORTED_KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources', 'configMapGenerator', 'labels']);

export function loadYamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.map((doc) => {
    if (doc.errors.length) throw new Error(`${relative(ROOT, file)}: ${doc.errors[0]!.message}`);
    return doc.toJS();
  }).filter((d) => d !== null);
}

/** Render a kustomization directory like `kustomize build` would for the features used here. */
export function renderKustomization(dir: string): { objects: K8sObject[]; files: string[] } {
  const file = join(dir, 'kustomization.yaml');
  const k = loadYamlDocs(file)[0] as Record<string, unknown>;
  for (const key of Object.keys(k)) if (!SUPPORTED_KUSTOMIZATION_KEYS.has(key)) throw new Error(`${relative(ROOT, file)}: kustomization key "${key}" is not supported by the test renderer`);
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') throw new Error(`${relative(ROOT, file)}: not a Kustomization`);
  const files: string[] = [];
  const objects: K8sObject[] = [];
  for (const resource of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, resource);
    if (!path.startsWith(dir)) throw new Error(`resource ${resource} is outside ${dir}`);
    if (existsSync(join(path, 'kustomization.yaml'))) {
      const sub = renderKustomization(path);
      objects.push(...sub.objects);
      files.push(...sub.files);
    } else {
      files.push(path);
      objects.push(...(loadYamlDocs(path) as K8sObject[]));
    }
  }
  for (const gen of (k.configMapGenerator as { name: string; files: string[]; options?: { disableNameSuffixHash?: boolean } }[] | undefined) ?? []) {
    if (!gen.options?.disableNameSuffixHash) throw new Error('configMapGenerator without disableNameSuffixHash would need name-reference rewriting; not supported');
    const data: Record<string, string> = {};
    for (const f of gen.files) {
      const path = resolve(dir, f);
      if (dirname(path) !== dir && !path.startsWith(`${dir}/`)) throw new Error(`configMapGenerator file ${f} is outside the kustomization directory (kustomize refuses it)`);
      files.push(path);
      data[f.split('/').pop()!] = readFileSync(path, 'utf8');
    }
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data });
  }
  for (const entry of (k.labels as { pairs: Record<string, string>; includeSelectors?: boolean }[] | undefined) ?? []) {
    if (entry.includeSelectors) throw new Error('labels.includeSelectors is not supported by the test renderer');
    for (const obj of objects) obj.metadata.labels = { ...obj.metadata.labels, ...entry.pairs };
  }
  return { objects, files };
}

// ── processes ──────────────────────────────────────────────────────────────

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startChild(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Child {
  const proc = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Run to completion. */
export async function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = startChild(command, args, options);
  const { code } = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** JSON log lines of a sidecar process. */
export function logLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
