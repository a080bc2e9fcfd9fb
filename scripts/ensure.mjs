// Makes a fresh clone runnable: installs dependencies when missing or stale, then compiles TypeScript.
// `npm start` and `npm test` run this first, so those two commands are the whole set-up.
import { existsSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const mtime = (p) => (existsSync(join(root, p)) ? statSync(join(root, p)).mtimeMs : 0);

const installed = mtime('node_modules/.package-lock.json');
if (!installed || installed < mtime('package-lock.json') || installed < mtime('package.json')) {
  console.error('[voxswitch] installing dependencies (npm ci)…');
  run('npm ci --no-audit --no-fund');
}
run('npx --no-install tsc -p tsconfig.json');
