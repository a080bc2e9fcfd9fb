/**
 * setfield / getfield: one whitelisted field of a row (the whitelist is src/domain/accounts/fields.ts), limited
 * to the rows the caller may reach by the hierarchy rule (src/domain/accounts/access.ts): tb_users rows the
 * caller may manage (setfield) or see (getfield); rows owned by an account the caller may act on (setfield) or
 * see (getfield); tables without an owner column to admins only.
 */
import type { Kysely } from 'kysely';
import { ok, fail, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import type { Services } from '../../services.js';
import { callerOf } from './target.js';
import { UserType, isAdminType } from '../../domain/accounts/types.js';
import type { UserPatch } from '../../domain/accounts/users.js';
import { may, mayOnOwner } from '../../domain/accounts/access.js';
import {
  tableSpec,
  fieldSpec,
  checkTypeHint,
  presentValue,
  filterValue,
  type TableSpec,
} from '../../domain/accounts/fields.js';

const isReseller = (t: number) => t === UserType.owner || t === UserType.reseller;

/** The database seen as untyped tables: the table and column names come only from the whitelist. */
function anyTable(s: Services): Kysely<Record<string, Record<string, unknown>>> {
  return s.storage.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
}

/** The owner id of row `rowid` of a table (undefined when there is no such row). */
async function rowOwner(s: Services, spec: TableSpec, rowid: number): Promise<number | undefined> {
  const db = anyTable(s);
  const col = spec.owner ?? spec.key;
  const r = await db.selectFrom(spec.table).select(col).where(spec.key, '=', rowid).executeTakeFirst();
  return r ? Number(r[col] ?? 0) : undefined;
}

async function setfield(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'setfield');
  if (!isAdminType(caller.type) && !isReseller(caller.type))
    return fail('setfield: only admins, owners and resellers may change fields', { legacyStatus: 403 });
  const spec = tableSpec(p.table);
  const { column, field } = fieldSpec(spec, p.fieldname, 'write');
  if (p.fieldvalue === undefined) return fail('fieldvalue: missing (send it empty to clear a text field)');
  checkTypeHint(p.fieldtype, p.fieldvalue, 'fieldtype');
  const stored = field.write!(p.fieldvalue);
  const rawId = (p.rowid ?? '').trim();
  if (!/^\d{1,9}$/.test(rawId)) return fail(`rowid: expected the ${spec.key} of the ${spec.table} row (a number)`);
  const rowid = Number(rawId);
  const notYours = fail(`rowid: no row ${rowid} in ${spec.table} that you may change`, { legacyStatus: 404 });
  if (!spec.owner && !isAdminType(caller.type))
    return fail(`setfield: ${spec.table} can only be changed by admins`, { legacyStatus: 403 });
  const owner = await rowOwner(s, spec, rowid);
  if (owner === undefined) return notYours;

  if (spec.table === 'tb_users') {
    const target = await s.users.byId(rowid);
    if (!target) return notYours;
    const self = target.id === caller.id;
    if (!(await may(s.users, caller, 'manage', target))) return notYours;
    const patch: UserPatch = {};
    switch (column) {
      case 'type':
        if (caller.type !== UserType.srvadmin)
          return fail('fieldname: type: only the server admin may change user types', { legacyStatus: 403 });
        if (self) return fail('fieldname: type: you cannot change your own type');
        patch.type = Number(stored);
        break;
      case 'enabled':
        if (self) return fail('fieldname: enabled: you cannot disable your own account');
        patch.enabled = Number(stored);
        break;
      case 'parentid': {
        const pid = Number(stored);
        const parent = pid ? await s.users.byId(pid) : undefined;
        if (!parent) return fail('fieldvalue: parentid: no such user', { legacyStatus: 404 });
        if (!isAdminType(parent.type) && !isReseller(parent.type))
          return fail('fieldvalue: parentid: the parent must be an admin, owner or reseller');
        if (await s.users.isInSubtree(target.id, parent.id))
          return fail('fieldvalue: parentid: the parent cannot be the account itself or one below it');
        if (!(await may(s.users, caller, 'see', parent))) {
          return fail('fieldvalue: parentid: the new parent is not in your part of the hierarchy', {
            legacyStatus: 403,
          });
        }
        patch.parentid = pid;
        break;
      }
      case 'tariffid':
        if (stored !== null) {
          const plan = await s.storage.db
            .selectFrom('tb_tariffplans')
            .select('id')
            .where('id', '=', Number(stored))
            .executeTakeFirst();
          if (!plan) return fail('fieldvalue: tariffid: no such tariff plan', { legacyStatus: 404 });
        }
        patch.tariffid = stored === null ? null : Number(stored);
        break;
      case 'currency': {
        const bal = await s.ledger.balance(target.id);
        if (bal && bal.credit !== 0 && bal.currency !== stored)
          return fail(
            'fieldvalue: currency can only change while the credit is 0 (move the credit with addcredit first)',
          );
        patch.currency = String(stored);
        break;
      }
      default:
        (patch as Record<string, unknown>)[column] = stored;
    }
    await s.users.update(target.id, patch);
  } else {
    if (!(await mayOnOwner(s.users, caller, 'act', owner))) return notYours;
    if (spec.table === 'tb_numbers' && column === 'userid' && Number(stored) !== 0) {
      const u = await s.users.byId(Number(stored));
      if (!u || !(await may(s.users, caller, 'act', u)))
        return fail('fieldvalue: userid: no such user in your part of the hierarchy', { legacyStatus: 404 });
    }
    const db = anyTable(s);
    const values: Record<string, unknown> = { [column]: stored };
    if (spec.table === 'tb_callforward') values.updated_at = Date.now();
    await db.updateTable(spec.table).set(values).where(spec.key, '=', rowid).execute();
    if (spec.table === 'tb_tariffs') await s.rating.load();
  }
  s.log.info({ table: spec.table, field: column, rowid, by: caller.username }, 'setfield');
  const shown = presentValue(field, stored);
  return ok(`${spec.table}.${column} of row ${rowid} set to ${shown}`, {
    fields: { table: spec.table, rowid, fieldname: column, fieldvalue: shown },
  });
}

/** getfield's auto-guessed filter columns for a value, in the order they are tried. */
function guessFilters(spec: TableSpec, v: string): string[] {
  const shortNum = /^\d{1,9}$/.test(v);
  const phoneLike = /^\+?\d{2,20}$/.test(v.replace(/[\s()-]/g, ''));
  switch (spec.table) {
    case 'tb_users':
      return [...(shortNum ? ['id'] : []), 'username', ...(phoneLike ? ['phone', 'did'] : [])];
    case 'tb_numbers':
      return [...(shortNum ? ['id'] : []), 'number'];
    case 'tb_callforward':
      return ['userid'];
    case 'tb_tariffs':
      return [...(shortNum ? ['id'] : []), 'prefix'];
  }
}

async function getfield(ctx: CommandContext, p: Record<string, string>): Promise<ApiResult> {
  const s = ctx.services;
  const caller = callerOf(ctx, 'getfield');
  const value = (p.filterfieldvalue ?? '').trim();
  const spec = tableSpec(p.table);
  const ret = fieldSpec(spec, p.retfieldname || 'id', 'read');
  if (!value) return fail('filterfieldvalue: mandatory');
  checkTypeHint(p.filterfieldtype, value, 'filterfieldtype');
  const name = (p.filterfieldname ?? '').trim().toLowerCase();
  const filters = name && name !== 'auto' ? [fieldSpec(spec, name, 'filter').column] : guessFilters(spec, value);
  if (!spec.owner && !isAdminType(caller.type))
    return fail(`getfield: ${spec.table} can only be read by admins`, { legacyStatus: 403 });
  const db = anyTable(s);
  const cols = [...new Set([ret.column, spec.key, ...(spec.owner ? [spec.owner] : [])])];
  for (const col of filters) {
    const f = spec.fields[col]!;
    let fv: string | number;
    try {
      fv = filterValue(f, col === 'phone' || col === 'did' || col === 'number' ? value.replace(/[\s()-]/g, '') : value);
    } catch (e) {
      if (filters.length > 1) continue; // auto-guess: this column does not fit the value
      throw e;
    }
    const rows = await db.selectFrom(spec.table).select(cols).where(col, '=', fv).orderBy(spec.key).limit(50).execute();
    for (const r of rows) {
      if (spec.owner && !(await mayOnOwner(s.users, caller, 'see', Number(r[spec.owner] ?? 0)))) continue;
      const v = presentValue(ret.field, r[ret.column]);
      return ok(v, { fields: { [ret.column]: v } });
    }
  }
  return fail(`no matching row in ${spec.table}`, { legacyStatus: 404 });
}

export const fieldCommands: CommandDef[] = [
  {
    name: 'setfield',
    params: ['table', 'fieldtype', 'fieldname', 'fieldvalue', 'rowid', 'sync'],
    level: 6,
    description:
      'update one whitelisted field (tables tb_users, tb_numbers, tb_callforward, tb_tariffs) ' +
      'of a row in your part of the hierarchy',
    run: setfield,
  },
  {
    name: 'getfield',
    params: ['table', 'retfieldname', 'filterfieldtype', 'filterfieldname', 'filterfieldvalue'],
    level: 6,
    description:
      'read one whitelisted field (default table tb_users, retfieldname id, ' +
      'filter auto-guessed: id, username, phone/DID)',
    run: getfield,
  },
];
