/**
 * The OpenAPI description and docs/api.md come from the command registry: the served description lists every
 * command with its effective levels, and the Overview table of docs/api.md names every available command with the
 * registry's level, key and parameters (a command added without its documentation fails here).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRegistry } from '../../src/api/commands/index.js';
import { buildOpenApi } from '../../src/api/openapi.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface DocRow {
  names: string[];
  level: number;
  key: number;
  required: string[];
  all: string[];
}

function overviewRows(): DocRow[] {
  const md = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
  const start = md.indexOf('### Overview');
  const section = md.slice(start, md.indexOf('\n### ', start + 5));
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const cells = l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      const ticks = (s: string) => [...s.matchAll(/`([^`]+)`/g)].flatMap((m) => m[1]!.split(',').map((x) => x.trim()));
      const plain = cells[3]!.replace(/\*[^*]*\*/g, '').replace(/\([^)]*\)/g, '');
      return {
        names: ticks(cells[0]!),
        level: Number(cells[1]!.split(',')[0]),
        key: Number(cells[2]),
        required: ticks(plain).filter(Boolean),
        all: ticks(cells[3]!.replace(/\([^)]*\)/g, '')).filter(Boolean),
      };
    });
}

test('docs/api.md Overview lists every available command with the registry level, key and parameters', () => {
  const reg = buildRegistry();
  const rows = overviewRows();
  assert.ok(rows.length > 50, `Overview table found (${rows.length} rows)`);
  const documented = new Set<string>();
  const wrong: string[] = [];
  for (const r of rows) {
    const def = reg.get(r.names[0]!);
    if (!def || !def.run) {
      wrong.push(`${r.names[0]}: documented as available but ${def ? 'not available' : 'not declared'}`);
      continue;
    }
    documented.add(def.name);
    if (r.level !== def.level) wrong.push(`${def.name}: level ${r.level} in docs, ${def.level} declared`);
    if (r.key !== (def.reqKey ?? 1)) wrong.push(`${def.name}: key ${r.key} in docs, ${def.reqKey ?? 1} declared`);
    for (const p of def.params) if (!r.all.includes(p)) wrong.push(`${def.name}: parameter ${p} not documented`);
    for (const p of r.required) if (!def.params.includes(p)) wrong.push(`${def.name}: ${p} documented, not declared`);
  }
  for (const d of reg.all()) if (d.run && !documented.has(d.name)) wrong.push(`${d.name}: missing from the Overview`);
  assert.deepEqual(wrong, []);
});

test('the OpenAPI description has one path per command with its level and availability', () => {
  const reg = buildRegistry();
  const doc = buildOpenApi({
    commands: reg.all(),
    rule: (d) => ({ reqKey: d.reqKey ?? 1, reqIp: d.reqIp ?? 0, reqUser: d.level, userMode: 2 }),
    version: 'test',
  }) as { openapi: string; paths: Record<string, Record<string, Record<string, unknown>>> };
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(Object.keys(doc.paths).length, reg.all().length);
  const balance = doc.paths['/mvapireq/balance']!;
  assert.equal(balance.get!['x-voxswitch-level'], 12);
  assert.equal(balance.get!['x-voxswitch-available'], true);
  const cmd = doc.paths['/mvapireq/cmd']!.get!;
  assert.equal(cmd['x-voxswitch-available'], false);
  assert.match(String(cmd.description), /shell execution is disabled/);
  const rating = doc.paths['/mvapireq/rating']!.get!.parameters as Array<{ name: string }>;
  assert.ok(rating.some((p) => p.name === 'bnum'));
  assert.ok(rating.some((p) => p.name === 'authmd5'));
});

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(async () => srv?.stop());

test('the server serves /openapi.json reflecting tb_api overrides, and the described request works', async () => {
  const r = await fetch(srv.url('/openapi.json'));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  const doc = (await r.json()) as { paths: Record<string, { get: Record<string, unknown> }> };
  assert.equal(doc.paths['/mvapireq/version']!.get['x-voxswitch-level'], 6);
  // the path shape the description uses is one the server answers
  const v = await fetch(srv.url('/mvapireq/version?format=json'));
  const body = (await v.json()) as { status: string; text: string };
  assert.equal(body.status, 'OK');
  assert.match(body.text, /^voxswitch /);
  // a tb_api override shows in the served description
  await srv.srv.services.storage.db
    .insertInto('tb_api')
    .values({ fname: 'version', req_key: 1, req_ip: 1, req_user: 4, req_user_mode: 0, customsql: null })
    .execute();
  await fetch(srv.url('/mvapireq/?apientry=apireload'));
  const again = (await (await fetch(srv.url('/mvapireq/openapi.json'))).json()) as typeof doc;
  assert.equal(again.paths['/mvapireq/version']!.get['x-voxswitch-level'], 4);
  assert.equal(again.paths['/mvapireq/version']!.get['x-voxswitch-reqip'], 1);
});
