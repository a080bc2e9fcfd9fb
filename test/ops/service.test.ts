/**
 * Running under a service manager: every `--help` lists its subcommands and options with a line each; the systemd
 * unit in deploy/ verifies (systemd-analyze) and restarts on the exit code servicerst uses; a real `voxswitch serve`
 * asked for servicerst through the API drains and exits with that code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/ports.js';
import { curl } from '../helpers/clients.js';
import { findTool, IN_CI } from '../helpers/tools.js';
import { RESTART_EXIT_CODE } from '../../src/services.js';

const run = promisify(execFile);
const BIN = resolve('bin/voxswitch.js');
const UNIT = resolve('deploy/voxswitch.service');

async function help(args: string[]): Promise<string> {
  const r = await run(process.execPath, [BIN, ...args, '--help'], { timeout: 15_000 });
  return r.stdout;
}

/** The names listed under "Commands:" (without commander's own `help`). */
function commandsOf(text: string): string[] {
  const part = text.split(/^Commands:\n/m)[1] ?? '';
  return [...part.matchAll(/^ {2}([a-z][a-z0-9-]*)/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
}

/** Every option and command line of a help text has its own description (no bare flag). */
function assertDescribed(text: string, where: string): void {
  for (const section of ['Options:', 'Commands:']) {
    const body = text.split(section + '\n')[1]?.split(/\n\n/)[0] ?? '';
    for (const line of body.split('\n').filter((l) => /^ {2}\S/.test(l)))
      assert.match(line, /^ {2}\S.*?\s{2,}\S/, `${where}: "${line}" has a description`);
  }
}

test('voxswitch --help and each subcommand --help list every subcommand and option with a line each', async () => {
  const top = await help([]);
  const names = commandsOf(top);
  for (const n of ['serve', 'config', 'gencert', 'numbers', 'pins', 'tariffs', 'backup', 'restore'])
    assert.ok(names.includes(n), `${n} in ${names.join(',')}`);
  assertDescribed(top, 'voxswitch');
  let visited = 0;
  for (const n of names) {
    const text = await help([n]);
    assert.match(text, new RegExp(`^Usage: voxswitch ${n}`, 'm'));
    assert.match(text, /-h, --help/);
    assertDescribed(text, n);
    visited++;
    for (const sub of commandsOf(text)) {
      const t2 = await help([n, sub]);
      assert.match(t2, new RegExp(`^Usage: voxswitch ${n} ${sub}`, 'm'));
      assertDescribed(t2, `${n} ${sub}`);
      visited++;
    }
  }
  assert.ok(visited >= 12, `${visited} help pages`);
  const serve = await help(['serve']);
  for (const o of ['--data-dir', '--set', '--workers']) assert.ok(serve.includes(o), o);
});

test('the systemd unit restarts on the servicerst exit code and confines the service', async (c) => {
  const unit = readFileSync(UNIT, 'utf8');
  const value = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
  assert.deepEqual(value('RestartForceExitStatus'), [String(RESTART_EXIT_CODE)]);
  assert.deepEqual(value('SuccessExitStatus'), [String(RESTART_EXIT_CODE)]);
  assert.deepEqual(value('Restart'), ['on-failure']);
  assert.match(value('ExecStart')[0]!, /bin\/voxswitch\.js serve --data-dir \/var\/lib\/voxswitch$/);
  assert.deepEqual(value('ProtectSystem'), ['strict']);
  assert.deepEqual(value('ReadWritePaths'), ['/var/lib/voxswitch']);
  assert.deepEqual(value('NoNewPrivileges'), ['yes']);
  assert.ok(Number(value('LimitNOFILE')[0]) >= 65536);
  const analyze = findTool('systemd-analyze');
  if (!analyze) {
    if (IN_CI) throw new Error('systemd-analyze is not installed (Debian package systemd)');
    c.skip('systemd-analyze is not installed');
    return;
  }
  // verify the unit as installed here: the paths pointed at this tree
  const dir = mkdtempSync(join(tmpdir(), 'vx-unit-'));
  try {
    const local = join(dir, 'voxswitch.service');
    writeFileSync(
      local,
      unit
        .replaceAll('/opt/voxswitch/bin/voxswitch.js', BIN)
        .replace(/^WorkingDirectory=.*$/m, `WorkingDirectory=${process.cwd()}`),
    );
    const r = await run(analyze, ['verify', local], { timeout: 30_000 }).catch(
      (e: { stderr?: string; code?: number }) => e,
    );
    const err = String((r as { stderr?: string }).stderr ?? '');
    assert.ok(!/voxswitch\.service:\d+:/.test(err), `no complaint about a line of the unit: ${err}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'servicerst through the API: the server drains, says so and exits with the restart code',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vx-svc-'));
    try {
      const port = await freePort();
      const args = ['serve', '--data-dir', dir, '--set', `mainaport=${port}`, '--set', 'apibindaddr=127.0.0.1'];
      args.push('--set', 'sipport=0', '--set', 'sipbindaddr=127.0.0.1', '--set', 'servicerstwait=2');
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, VOXSWITCH_ADMIN_PASSWORD: 'Svc-Secret-42' },
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      const kill = setTimeout(() => child.kill('SIGKILL'), 45_000);
      for (let i = 0; i < 100 && !/listening: tcp/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /listening: tcp/);
      // loopback is trusted as the admin (level 4 passes from here)
      const r = await curl([`http://127.0.0.1:${port}/mvapireq/?apientry=servicerst`]);
      assert.equal(r.status, 200, r.body);
      assert.match(r.body, /OK$/);
      const code = await exited;
      clearTimeout(kill);
      assert.equal(code, RESTART_EXIT_CODE, out.slice(-1000));
      const log = readFileSync(join(dir, 'logs', 'main.log'), 'utf8');
      assert.match(log, /servicerst/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
