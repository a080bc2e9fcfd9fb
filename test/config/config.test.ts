import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOptions, ConfigError } from '../../src/config/options.js';
import { ConfigStore, parseSetArgs } from '../../src/config/store.js';

test('defaults follow the document', () => {
  const o = parseOptions({});
  assert.equal(o.mainaport, 80);
  assert.equal(o.usemainaport, true);
  assert.equal(o.trustlanip, true);
  assert.equal(o.httpstrictresponse, false);
  assert.equal(o.apiv2auth, 2);
  assert.equal(o.tlsport, 443);
});

test('values are validated, errors name the option', () => {
  assert.throws(() => parseOptions({ mainaport: '99999' }), /option "mainaport": expected an integer from 0 to 65535/);
  assert.throws(() => parseOptions({ trustlanip: 'maybe' }), /option "trustlanip"/);
  assert.throws(() => parseOptions({ apiv2auth: '3' }), /option "apiv2auth"/);
  assert.throws(() => parseOptions({ trustediplist: '1.2.3.4, evil host' }), /option "trustediplist".*"evil"/);
  assert.throws(() => parseOptions({ bogus: '1' }), /unknown option "bogus"/);
  assert.deepEqual(parseOptions({ trustediplist: '10.0.0.1, 192.168.0.0/16' }).trustediplist, [
    '10.0.0.1',
    '192.168.0.0/16',
  ]);
  assert.throws(() => parseSetArgs(['nope=1']), ConfigError);
  assert.throws(() => parseSetArgs(['mainaport']), /NAME=VALUE/);
});

test('file + --set overrides, reload re-reads the file and keeps the old config on error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-cfg-'));
  try {
    writeFileSync(join(dir, 'voxswitch.conf'), '# c\nmainaport=8080\nhttpstrictresponse=1\n');
    const c = new ConfigStore(dir, parseSetArgs(['mainaport=9090']));
    assert.equal(c.get('mainaport'), 9090);
    assert.equal(c.get('httpstrictresponse'), true);
    let seen = 0;
    c.onChange(() => seen++);
    writeFileSync(join(dir, 'voxswitch.conf'), 'httpstrictresponse=0\nenablejsonp=2\n');
    c.reload();
    assert.equal(c.get('httpstrictresponse'), false);
    assert.equal(c.get('enablejsonp'), 2);
    assert.equal(seen, 1);
    writeFileSync(join(dir, 'voxswitch.conf'), 'enablejsonp=7\n');
    assert.throws(() => c.reload(), /enablejsonp/);
    assert.equal(c.get('enablejsonp'), 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('persist refuses a bad value without writing it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vx-cfg-'));
  try {
    const c = new ConfigStore(dir, {});
    c.persist({ enablejsonp: '2' });
    assert.throws(() => c.persist({ enablejsonp: '9' }), /enablejsonp/);
    assert.equal(new ConfigStore(dir, {}).get('enablejsonp'), 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
