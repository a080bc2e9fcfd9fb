/**
 * The ini-file and settings commands over HTTP (curl): getini/setini on voxswitch.conf, loadinifiles into tb_settings,
 * a row changed through the `db` command, savesettings/saveinifiles back into the file, applied by reload; bad input
 * writes nothing. The same table flow on PostgreSQL.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, API_KEY, ADMIN_PASSWORD, type TestServer } from '../helpers/server.js';
import { usePgTestServer } from '../helpers/pg.js';
import { curl } from '../helpers/clients.js';
import { setIniValues } from '../../src/config/inifile.js';
import { optionSchemas, optionSections } from '../../src/config/options.js';

const SMTP_SECRET = 'Smtp-Pass-4411aa';
const INITIAL = `# operator's note: keep this line\nbantime=600\nsmtppassword=${SMTP_SECRET}\n`;

interface Answer {
  status: number;
  ok: boolean;
  text: string;
}

/** One API call by curl, as the admin (authid + authpwd), the answer in the document's text form. */
async function api(t: TestServer, entry: string, params: Record<string, string> = {}): Promise<Answer> {
  const q = new URLSearchParams({
    apientry: entry,
    authkey: API_KEY,
    authid: 'admin',
    authpwd: ADMIN_PASSWORD,
    ...params,
  });
  const r = await curl([t.url(`/mvapireq/?${q.toString()}`)]);
  const lines = r.body.trimEnd().split(/\r?\n/);
  const last = lines[lines.length - 1] ?? '';
  return { status: r.status, ok: last === 'OK', text: lines.slice(0, -1).join('\n') || r.body };
}

async function rows(t: TestServer): Promise<Map<string, { value: string; saved: number; module: string }>> {
  const all = await t.srv.services.storage.db.selectFrom('tb_settings').selectAll().execute();
  return new Map(all.map((r) => [r.name, { value: r.value, saved: Number(r.saved), module: r.module }]));
}

const conf = (t: TestServer) => readFileSync(join(t.dataDir, 'voxswitch.conf'), 'utf8');

/** loadinifiles → a row changed by `db` → savesettings → reload; a bad row then writes nothing. */
async function tableFlow(t: TestServer): Promise<void> {
  const load = await api(t, 'loadinifiles');
  assert.ok(load.ok, load.text);
  assert.match(load.text, /secrets kept in the file only: smtppassword/);
  let r = await rows(t);
  assert.deepEqual(r.get('bantime'), { value: '600', saved: 1, module: 'api' });
  assert.equal(r.has('smtppassword'), false, 'a secret was copied into the table');

  const upd = await api(t, 'db', { txt: "UPDATE tb_settings SET value = '900', saved = 0 WHERE name = 'bantime'" });
  assert.ok(upd.ok, upd.text);
  const ins = await api(t, 'db', {
    txt: "INSERT INTO tb_settings (name, module, value, saved) VALUES ('sipminexpires', 'sip', '90', 0)",
  });
  assert.ok(ins.ok, ins.text);

  // one section at a time: only the sip row is written
  const sip = await api(t, 'saveinifiles', { module: 'sip' });
  assert.ok(sip.ok, sip.text);
  assert.match(sip.text, /1 setting\(s\) written to voxswitch\.conf: sipminexpires/);
  assert.match(conf(t), /^\[sip\]\n(?:\w+=.*\n)*sipminexpires=90$/m);
  assert.match(conf(t), /^bantime=600$/m);

  const save = await api(t, 'savesettings');
  assert.ok(save.ok, save.text);
  assert.match(save.text, /written to voxswitch\.conf: bantime; run reload to apply/);
  assert.ok(conf(t).startsWith(`# operator's note: keep this line\nbantime=900\n`), conf(t));
  r = await rows(t);
  assert.equal(r.get('bantime')!.saved, 1);
  assert.equal(r.get('sipminexpires')!.saved, 1);
  assert.equal(t.srv.services.config.get('bantime'), 600, 'the running value changed before reload');
  assert.ok((await api(t, 'reload')).ok);
  assert.equal(t.srv.services.config.get('bantime'), 900);
  assert.equal(t.srv.services.config.get('sipminexpires'), 90);
  assert.match((await api(t, 'savesettings')).text, /no unsaved settings/);

  // a value the schema refuses: nothing written, the row stays unsaved
  const before = conf(t);
  await api(t, 'db', { txt: "UPDATE tb_settings SET value = 'soon', saved = 0 WHERE name = 'bantime'" });
  const bad = await api(t, 'savesettings');
  assert.equal(bad.ok, false, bad.text);
  assert.match(bad.text, /nothing written: option "bantime"/);
  assert.equal(conf(t), before);
  assert.equal((await rows(t)).get('bantime')!.saved, 0);
  // an unknown option in the table: refused by name, nothing written
  await api(t, 'db', { txt: "UPDATE tb_settings SET value = '1200' WHERE name = 'bantime'" });
  await api(t, 'db', {
    txt: "INSERT INTO tb_settings (name, module, value, saved) VALUES ('nosuchopt', 'api', '1', 0)",
  });
  const unknown = await api(t, 'saveinifiles', { module: 'all' });
  assert.equal(unknown.ok, false);
  assert.match(unknown.text, /tb_settings row "nosuchopt": unknown option; nothing written/);
  assert.equal(conf(t), before);

  // loading the file again replaces the unsaved rows and says so
  const reload = await api(t, 'loadinifiles', { module: 'api' });
  assert.ok(reload.ok, reload.text);
  assert.match(reload.text, /unsaved rows replaced: .*bantime/);
  r = await rows(t);
  assert.deepEqual(r.get('bantime'), { value: '900', saved: 1, module: 'api' });
  assert.equal(r.has('nosuchopt'), false);
  assert.equal(r.get('sipminexpires')!.saved, 1, 'another section was touched');
}

describe('settings on SQLite', () => {
  let t: TestServer;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vx-settings-'));
    writeFileSync(join(dir, 'voxswitch.conf'), INITIAL);
    t = await startTestServer({}, dir);
  });
  after(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('getini reads the file; secrets masked; a missing option, a wrong section or another file is an ERROR', async () => {
    const g = await api(t, 'getini', { section: 'api', key: 'bantime' });
    assert.equal(g.status, 200);
    assert.ok(g.ok, g.text);
    assert.equal(g.text, '600');
    const secret = await api(t, 'getini', { key: 'smtppassword' });
    assert.equal(secret.text, '***');
    const missing = await api(t, 'getini', { key: 'sipport' });
    assert.equal(missing.ok, false);
    assert.match(missing.text, /option "sipport" is not set in voxswitch\.conf \(its default is "5060"/);
    assert.match(
      (await api(t, 'getini', { section: 'sip', key: 'bantime' })).text,
      /is in section \[api\], not \[sip\]/,
    );
    assert.match((await api(t, 'getini', { key: 'nosuch' })).text, /key "nosuch": unknown option/);
    assert.match(
      (await api(t, 'getini', { key: 'bantime', file: '../../etc/passwd' })).text,
      /the only ini file of this server is voxswitch\.conf/,
    );
  });

  test('setini writes under the section, keeps the comments, refuses bad values and applies only on reload', async () => {
    const s = await api(t, 'setini', { section: 'sip', key: 'sipmaxexpires', value: '1800' });
    assert.ok(s.ok, s.text);
    assert.match(s.text, /^\[sip\] sipmaxexpires written to voxswitch\.conf; run reload to apply$/);
    assert.ok(conf(t).startsWith(INITIAL), conf(t));
    assert.match(conf(t), /\n\[sip\]\nsipmaxexpires=1800\n$/);
    assert.notEqual(t.srv.services.config.get('sipmaxexpires'), 1800);
    assert.equal((await rows(t)).get('sipmaxexpires')?.saved, 1);

    const before = conf(t);
    for (const [params, why] of [
      [{ key: 'sipmaxexpires', value: 'often' }, /nothing written: option "sipmaxexpires"/],
      [{ key: 'bantime', value: '60\nsipport=1' }, /may not hold a line break or NUL/],
      [{ key: 'bantime' }, /value: missing/],
      [{ section: 'api', key: 'sipport', value: '5070' }, /is in section \[sip\], not \[api\]/],
      [{ key: 'bantime', value: '60', file: 'other.ini' }, /the only ini file/],
    ] as Array<[Record<string, string>, RegExp]>) {
      const r = await api(t, 'setini', params);
      assert.equal(r.ok, false, JSON.stringify(params));
      assert.match(r.text, why);
    }
    assert.equal(conf(t), before, 'a refused setini changed the file');
    assert.ok((await api(t, 'reload')).ok);
    assert.equal(t.srv.services.config.get('sipmaxexpires'), 1800);
    assert.equal((await api(t, 'getini', { key: 'sipmaxexpires' })).text, '1800');
    // a secret goes to the file only
    assert.ok((await api(t, 'setini', { key: 'smtppassword', value: 'New-Secret-77' })).ok);
    assert.match(conf(t), /^smtppassword=New-Secret-77$/m);
    assert.equal((await rows(t)).has('smtppassword'), false);
  });

  test('loadinifiles, a row changed by db, savesettings and saveinifiles, reload', async () => {
    await tableFlow(t);
    assert.match((await api(t, 'saveinifiles', { module: 'bogus' })).text, /module "bogus": unknown section/);
  });
});

describe('settings on PostgreSQL', () => {
  const h = usePgTestServer('settings', {});
  test('the same table flow on PostgreSQL', async (c) => {
    if (h.skip) return c.skip(h.skip);
    writeFileSync(join(h.t!.dataDir, 'voxswitch.conf'), INITIAL);
    assert.ok((await api(h.t!, 'reload')).ok);
    await tableFlow(h.t!);
  });
});

test('every option is in exactly one section', () => {
  const seen = Object.values(optionSections).flatMap((g) => Object.keys(g));
  assert.equal(seen.length, new Set(seen).size, 'an option is in two sections');
  assert.deepEqual(new Set(seen), new Set(Object.keys(optionSchemas)));
});

test('setIniValues replaces a line in place, appends to a section or adds it, keeps the rest', () => {
  const text = '# top\nbantime=1\n\n[sip]\nsipport=5060\n# sip note\n\n[logs]\nloglevel=info\n';
  const out = setIniValues(text, [
    { section: 'api', name: 'bantime', value: '2' },
    { section: 'sip', name: 'sipmaxexpires', value: '60' },
    { section: 'tls', name: 'usetls', value: 'true' },
  ]);
  assert.equal(
    out,
    '# top\nbantime=2\n\n[sip]\nsipport=5060\nsipmaxexpires=60\n# sip note\n\n[logs]\nloglevel=info\n\n[tls]\nusetls=true\n',
  );
  assert.throws(() => setIniValues('', [{ section: 'api', name: 'bantime', value: '1\0' }]), /line break or NUL/);
});
