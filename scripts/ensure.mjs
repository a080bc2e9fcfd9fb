// Makes a fresh clone runnable: installs dependencies when missing or stale, then compiles TypeScript.
// `npm start` and `npm test` run this first, so those two commands are the whole set-up.
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const mtime = (p) => (existsSync(join(root, p)) ? statSync(join(root, p)).mtimeMs : 0);

const installed = mtime('node_modules/.package-lock.json');
// the lock file decides what is installed (an edit of package.json's scripts needs no new install)
if (!installed || installed < mtime('package-lock.json')) {
  console.error('[voxswitch] installing dependencies (npm ci)…');
  run('npm ci --no-audit --no-fund');
}

// Compiled files whose source was moved or deleted would still run (the test runner walks dist/test): drop them.
function dropStale(dir) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      dropStale(p);
      if (readdirSync(p).length === 0) rmSync(p, { recursive: true });
      continue;
    }
    const m = /^(.*)\.(js|js\.map|d\.ts)$/.exec(name);
    if (!m) continue;
    const source = join(root, relative(join(root, 'dist'), dir), `${m[1]}.ts`);
    if (!existsSync(source)) rmSync(p);
  }
}
for (const top of ['src', 'test', 'bench']) dropStale(join(root, 'dist', top));

if (!existsSync(join(root, 'dist', '.tsbuildinfo'))) console.error('[voxswitch] compiling TypeScript (tsc)…');
run('npx --no-install tsc -p tsconfig.json');

// The web console (console/, served at /console): built with Vite into dist/console when a source is newer.
function newest(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newest(p) : st.mtimeMs);
  }
  return t;
}
const stamp = 'dist/console/.built';
if (Math.max(newest(join(root, 'console')), mtime('package-lock.json')) > mtime(stamp)) {
  console.error('[voxswitch] building the web console (vite)…');
  run('npx --no-install vite build --config console/vite.config.mjs');
  writeFileSync(join(root, stamp), new Date().toISOString() + '\n');
  console.error('[voxswitch] web console built into dist/console');
}
