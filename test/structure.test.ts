/**
 * The structure rules of docs/architecture.md, checked on the source tree: layer imports, no import cycles, file and
 * line sizes, no folder that reads as vendored code, comments free of project-schedule words, and the formatter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src');

function walk(dir: string, out: string[] = [], dirs: string[] = []): { files: string[]; dirs: string[] } {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      dirs.push(p);
      walk(p, out, dirs);
    } else if (name.endsWith('.ts')) out.push(p);
  }
  return { files: out, dirs };
}

const { files, dirs } = walk(src);
const rel = (p: string) => relative(root, p);

/** Relative imports (static, type-only and re-exports) of a file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const spec = (m[1] ?? m[2])!;
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => existsSync(t))]));

test('domain and SIP code import nothing from src/api/', () => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    const r = rel(f);
    if (!r.startsWith('src/domain/') && !r.startsWith('src/sip/')) continue;
    for (const d of deps) if (rel(d).startsWith('src/api/')) bad.push(`${r} → ${rel(d)}`);
  }
  assert.deepEqual(bad, []);
});

test('domain code imports nothing from src/sip/; SIP and domain never import the services container', () => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    const r = rel(f);
    for (const d of deps) {
      const t = rel(d);
      if (r.startsWith('src/domain/') && t.startsWith('src/sip/')) bad.push(`${r} → ${t}`);
      if ((r.startsWith('src/domain/') || r.startsWith('src/sip/')) && t === 'src/services.ts') bad.push(`${r} → ${t}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('src/ops (backups, maintenance, reports) imports nothing from the API, SIP or the container; nothing below it imports it', () => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    const r = rel(f);
    for (const d of deps) {
      const t = rel(d);
      if (r.startsWith('src/ops/') && (t.startsWith('src/api/') || t.startsWith('src/sip/') || t === 'src/services.ts'))
        bad.push(`${r} → ${t}`);
      const below = ['src/domain/', 'src/sip/', 'src/state/', 'src/storage/', 'src/config/'];
      if (below.some((b) => r.startsWith(b)) && t.startsWith('src/ops/')) bad.push(`${r} → ${t}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no import cycle in src/', () => {
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' → '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('no folder named thirdparty (it reads as vendored code)', () => {
  const all = [...dirs, ...walk(join(root, 'test')).dirs];
  assert.deepEqual(all.filter((d) => /(^|\/)third-?party$/i.test(d)).map(rel), []);
});

test('no src/ file over 500 lines, no line over 120 characters', () => {
  const long: string[] = [];
  const wide: string[] = [];
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n');
    if (lines.length > 500) long.push(`${rel(f)}: ${lines.length} lines`);
    lines.forEach((l, i) => {
      if (l.length > 120) wide.push(`${rel(f)}:${i + 1} (${l.length})`);
    });
  }
  assert.deepEqual(long, []);
  assert.deepEqual(wide, []);
});

test('comments explain the code, not the project schedule', () => {
  const bad: string[] = [];
  const re = /\b(issue\s+#?\d+|of this stage|this stage|a later stage|next stage)\b/i;
  for (const f of files) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((l, i) => {
        if (re.test(l)) bad.push(`${rel(f)}:${i + 1}: ${l.trim()}`);
      });
  }
  assert.deepEqual(bad, []);
});

test('the formatter finds nothing to change (npm run format)', () => {
  const bin = join(root, 'node_modules', '.bin', 'prettier');
  const r = spawnSync(bin, ['--check', '--log-level', 'warn', '.'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `prettier --check failed; run "npm run format":\n${r.stdout}${r.stderr}`);
});
