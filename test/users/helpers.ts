/** Shared set-up for the account command tests: a hierarchy of users created through newuseri. */
import assert from 'node:assert/strict';
import { API_KEY, type TestServer } from '../helpers/server.js';
import { req, src } from '../helpers/source.js';
import type { ApiResult } from '../../src/api/types.js';

export const LOCAL = src('127.0.0.1');
export const REMOTE = src('203.0.113.7');

/** Password of each test user: Name-pass-1 (e.g. Rita-pass-1). */
export const pw = (u: string) => `${u[0]!.toUpperCase()}${u.slice(1)}-pass-1`;

export function caller(t: TestServer) {
  const call = (e: string, p: Record<string, string>, s = REMOTE): Promise<ApiResult> =>
    t.srv.gateway.handle(req(e, p, s));
  const as = (user: string, e: string, p: Record<string, string> = {}, s = REMOTE, password = pw(user)) =>
    call(e, { authkey: API_KEY, authid: user, authpwd: password, ...p }, s);
  return { call, as };
}

/**
 * admin (srvadmin)
 * ├─ ada (admin)
 * ├─ rita (reseller)
 * │  ├─ sam (reseller)  └─ carl (enduser, phone 3611111111)
 * │  ├─ bob (enduser, phone 3622222222, e-mail bob@example.com)
 * │  └─ sue (support)
 * └─ eve (enduser, name "100% real_name")
 */
export async function makeHierarchy(t: TestServer): Promise<Record<string, number>> {
  const { call } = caller(t);
  const ids: Record<string, number> = { admin: (await t.srv.services.users.byUsername('admin'))!.id };
  const add = async (u: string, extra: Record<string, string>) => {
    const r = await call('newuseri', { u_username: u, u_password: pw(u), u_name: u.toUpperCase(), ...extra }, LOCAL);
    assert.equal(r.ok, true, r.text);
    ids[u] = Number(r.fields!.id);
  };
  await add('ada', { u_type: 'admin' });
  await add('rita', { u_type: 'reseller', u_email: 'rita@example.com' });
  await add('sam', { u_type: 'reseller', u_parentid: String(ids.rita) });
  await add('carl', { u_parentid: String(ids.sam), u_phone: '3611111111' });
  await add('bob', { u_parentid: String(ids.rita), u_phone: '3622222222', u_email: 'bob@example.com' });
  await add('sue', { u_type: 'support', u_parentid: String(ids.rita) });
  await add('eve', { u_name: '100% real_name', u_email: 'eve@example.org' });
  return ids;
}
