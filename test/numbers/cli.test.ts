import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { numbersCommand } from '../../src/cli/numbers.js';

const dir = mkdtempSync(join(tmpdir(), 'voxswitch-numbers-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const before = process.exitCode;
  process.exitCode = 0;
  const cmd = numbersCommand({ out: (s) => void (out += s), err: (s) => void (err += s) });
  cmd.exitOverride();
  await cmd.parseAsync(args, { from: 'user' });
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}

test('numbers add / list / del on a data dir', async () => {
  const a = await run('add', '+3612340001', '3612340002,3612340003', '--data-dir', dir);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, 'added 3 number(s) to the pool\n');
  const r = await run('add', '--range', '3612340003:3', '--data-dir', dir);
  assert.equal(r.out, 'added 2 number(s) to the pool (1 already in the pool)\n');
  const l = await run('list', '--data-dir', dir);
  assert.equal(l.code, 0, l.err);
  const lines = l.out.trim().split('\n');
  assert.deepEqual(lines.slice(0, -1), [
    '3612340001\tfree',
    '3612340002\tfree',
    '3612340003\tfree',
    '3612340004\tfree',
    '3612340005\tfree',
  ]);
  assert.equal(lines.at(-1), '5 number(s), 5 free');
  assert.equal((await run('del', '3612340005', '--data-dir', dir)).out, 'number 3612340005 removed from the pool\n');
  assert.equal((await run('list', '--data-dir', dir)).out.trim().split('\n').at(-1), '4 number(s), 4 free');
});

test('numbers add: bad input is refused with a message and a non-zero exit code, nothing added', async () => {
  const bad = await run('add', '3612349999', 'abc', '--data-dir', dir);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /"abc" is not a phone number/);
  const range = await run('add', '--range', '36123:x', '--data-dir', dir);
  assert.equal(range.code, 2);
  assert.match(range.err, /expected FROM:COUNT/);
  const none = await run('add', '--data-dir', dir);
  assert.match(none.err, /no numbers given/);
  assert.equal((await run('list', '--data-dir', dir)).out.trim().split('\n').at(-1), '4 number(s), 4 free');
});
