/** `voxswitch serve` as an operator runs it: first start, secrets printed once and never logged, port errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { freePort } from '../helpers/ports.js';

/** Runs `voxswitch serve` until `until` matches its stdout (or it exits); then stops it. */
function serve(
  args: string[],
  env: Record<string, string>,
  until: RegExp,
  prefix: string[] = [],
): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    const cmd = prefix.length ? prefix[0]! : process.execPath;
    const child = spawn(
      cmd,
      [...prefix.slice(1), ...(prefix.length ? [process.execPath] : []), 'bin/voxswitch.js', 'serve', ...args],
      { env: { ...process.env, ...env } },
    );
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      if (until.test(out)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ out, err, code });
    });
  });
}

test('first start creates the admin, key and salt, prints them once; secrets never reach the log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-cli-'));
  try {
    const port = await freePort();
    const args = [
      '--data-dir',
      dir,
      '--set',
      `mainaport=${port}`,
      '--set',
      'apibindaddr=127.0.0.1',
      '--set',
      'sipport=0',
      '--set',
      'sipbindaddr=127.0.0.1',
    ];
    const first = await serve(args, { VOXSWITCH_ADMIN_PASSWORD: 'Very-Secret-42' }, /database: /);
    assert.match(first.out, /=== voxswitch first start ===/);
    assert.match(first.out, /server admin account: admin/);
    assert.match(first.out, /admin password:\s+\(from VOXSWITCH_ADMIN_PASSWORD\)/);
    const key = /API key \(apiv2key\):\s+(\S+)/.exec(first.out)![1]!;
    assert.ok(key.length >= 20);
    assert.match(first.out, new RegExp(`listening: tcp \\(http, websocket, lines\\) on 127.0.0.1:${port}`));
    const conf = readFileSync(join(dir, 'voxswitch.conf'), 'utf8');
    assert.ok(conf.includes(`apiv2key=${key}`));
    // the md5 salt stays empty (stock clients hash with an empty server salt); first start says how to set one
    assert.ok(!/apiv2md5salt=\S/.test(conf));
    assert.match(first.out, /md5 salt:\s+none .*apiv2md5salt=VALUE/);
    const second = await serve(args, {}, /database: /);
    assert.ok(!second.out.includes('first start'));
    const log = existsSync(join(dir, 'logs', 'main.log')) ? readFileSync(join(dir, 'logs', 'main.log'), 'utf8') : '';
    assert.match(log, /voxswitch started/);
    assert.ok(!log.includes('Very-Secret-42'));
    assert.ok(!log.includes(key));
    // the password is encrypted at rest
    const db = readFileSync(join(dir, 'voxswitch.db'));
    assert.ok(!db.includes(Buffer.from('Very-Secret-42')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad option is a clear error naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-cli-'));
  try {
    const r = await serve(['--data-dir', dir, '--set', 'mainaport=http'], {}, /database: /);
    assert.equal(r.code, 1);
    assert.match(r.err, /option "mainaport": expected an integer/);
    const r2 = await serve(['--data-dir', dir, '--set', 'nosuch=1'], {}, /database: /);
    assert.match(r2.err, /unknown option "nosuch"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('port in use and permission denied (port 80 as an unprivileged user) give a hint', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-cli-'));
  chmodSync(dir, 0o777);
  const blocker = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const port = (blocker.address() as { port: number }).port;
    const r = await serve(
      ['--data-dir', dir, '--set', `mainaport=${port}`, '--set', 'apibindaddr=127.0.0.1', '--set', 'usesip=false'],
      { VOXSWITCH_ADMIN_PASSWORD: 'x' },
      /database: /,
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /already in use/);
    let canDrop = process.getuid?.() === 0;
    try {
      execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    } catch {
      canDrop = false;
    }
    if (!canDrop) {
      t.diagnostic('EACCES case skipped: needs root and setpriv to run as an unprivileged user');
      return;
    }
    const dir2 = mkdtempSync(join(tmpdir(), 'vx-cli-'));
    chmodSync(dir2, 0o777);
    try {
      const r2 = await serve(
        ['--data-dir', dir2, '--set', 'mainaport=80', '--set', 'apibindaddr=127.0.0.1', '--set', 'usesip=false'],
        { VOXSWITCH_ADMIN_PASSWORD: 'x' },
        /database: /,
        ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      );
      assert.equal(r2.code, 1);
      assert.match(r2.err, /permission denied.*cap_net_bind_service.*mainaport=8080/s);
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
