/** Helpers for the deploy tests: Dockerfile/.dockerignore parsing, `kubectl kustomize`, child processes. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { K8sObject } from './k8s-fields';

import { ROOT } from '../helpers/paths';

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

// ── kustomize: the real `kubectl kustomize`, so what is tested is what `kubectl apply -k` applies ──

export type { K8sObject } from './k8s-fields';

export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

export function loadYamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.map((doc) => {
    if (doc.errors.length) throw new Error(`${relative(ROOT, file)}: ${doc.errors[0]!.message}`);
    return doc.toJS();
  }).filter((d) => d !== null);
}

/**
 * `kubectl kustomize DIR` (kustomize v5 built into kubectl), parsed. Throws with
 * kubectl's own message when the build fails, and with a clear one when kubectl
 * is missing (it is a requirement of this repository's tests, never a skip).
 */
export function kustomize(dir: string): K8sObject[] {
  const result = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`kubectl not found (${KUBECTL}): the deploy tests render with the real \`kubectl kustomize\` (kustomize v5); install kubectl or set KUBECTL`);
  }
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`kubectl kustomize ${relative(ROOT, dir) || dir} failed (exit ${result.status}):\n${result.stderr.trim()}`);
  const docs = parseAllDocuments(result.stdout);
  return docs.map((doc) => {
    if (doc.errors.length) throw new Error(`kubectl kustomize ${relative(ROOT, dir)}: unparseable output: ${doc.errors[0]!.message}`);
    return doc.toJS() as K8sObject;
  }).filter((d) => d !== null);
}

/** Every kustomization directory under `root` (Components excluded: they only render inside a kustomization). */
export function kustomizations(root: string = DEPLOY): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const sub = join(dir, entry.name);
      try {
        if ((parse(readFileSync(join(sub, 'kustomization.yaml'), 'utf8')) as { kind?: string }).kind !== 'Component') out.push(sub);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      walk(sub);
    }
  };
  walk(root);
  return out.sort();
}

/** Every kustomize Component directory under `root`. */
export function components(root: string = DEPLOY): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const sub = join(dir, entry.name);
      try {
        if ((parse(readFileSync(join(sub, 'kustomization.yaml'), 'utf8')) as { kind?: string }).kind === 'Component') out.push(sub);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      walk(sub);
    }
  };
  walk(root);
  return out.sort();
}

/** The version line of `kubectl version --client` for kustomize, e.g. "v5.5.0". */
export function kustomizeVersion(): string {
  const result = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`\`${KUBECTL} version --client\` failed: ${result.error?.message ?? result.stderr}`);
  const m = /Kustomize Version: (v\d+\.\d+\.\d+)/.exec(result.stdout);
  if (!m) throw new Error(`no "Kustomize Version" in \`${KUBECTL} version --client\`:\n${result.stdout}`);
  return m[1]!;
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

/** JSON log lines of a sidecar process (complete lines only: a line still being written is left for later). */
export function logLines(text: string): Record<string, unknown>[] {
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
