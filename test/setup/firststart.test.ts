/**
 * First start never loses the admin password: a first start that fails after creating the admin (its API port is
 * in use) removes the admin again and prints nothing; the next start creates it and prints a working password.
 * And `voxswitch config | head -1` ends quietly (no EPIPE stack trace).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startServer } from '../../src/server.js';
import { startTestServer } from '../helpers/server.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('a first start that fails (port in use) leaves no admin; the next one prints a working password', async () => {
  const busy = await startTestServer();
  const dir = mkdtempSync(join(tmpdir(), 'vx-first-'));
  const saved = process.env.VOXSWITCH_ADMIN_PASSWORD;
  delete process.env.VOXSWITCH_ADMIN_PASSWORD;
  const printed: string[] = [];
  const opts = (port: number) => ({
    dataDir: dir,
    overrides: { mainaport: String(port), apibindaddr: '127.0.0.1', usesip: 'false' },
    announce: (t: string) => printed.push(t),
    logger: pino({ level: 'silent' }),
  });
  try {
    await assert.rejects(startServer(opts(busy.port)), /already in use/);
    assert.deepEqual(printed, [], 'nothing was announced by the failed start');
    const srv = await startServer(opts(0));
    try {
      assert.equal(printed.length, 1);
      const password = /admin password:\s+(\S+)/.exec(printed[0]!)![1]!;
      const admin = await srv.services.users.byUsername('admin');
      assert.ok(admin, 'the admin exists');
      assert.equal(await srv.services.users.count(), 1);
      const port = srv.services.listeners[0]!.port;
      const key = /apiv2key\):\s+(\S+)/.exec(printed[0]!)![1]!;
      const r = await fetch(
        `http://127.0.0.1:${port}/mvapireq/?apientry=balance&authkey=${key}&authid=admin&authpwd=${password}`,
      );
      assert.match(await r.text(), /OK$/, 'the printed password logs in');
    } finally {
      await srv.stop();
    }
  } finally {
    if (saved !== undefined) process.env.VOXSWITCH_ADMIN_PASSWORD = saved;
    await busy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('voxswitch config | head -1 exits quietly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-epipe-'));
  try {
    const { stdout, stderr } = await run('sh', ['-c', `node "${MAIN}" config --data-dir "${dir}" | head -c 1`]);
    assert.equal(stdout.length, 1);
    assert.equal(stderr, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
