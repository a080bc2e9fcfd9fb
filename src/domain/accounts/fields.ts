/**
 * The whitelist behind setfield/getfield: which tables and columns the generic field APIs may read, filter
 * by or write, how a value of each column is validated, and which column ties a row to a user (for the
 * hierarchy check). Identifiers used in SQL come only from these tables, never from the request.
 */
import { parseAmount, formatAmount } from '../billing/amount.js';
import { parseUserType } from './types.js';
import { DomainError } from '../errors.js';

/** A table, column or value that setfield/getfield refuse; the message names the parameter. */
export class FieldError extends DomainError {}

export type FieldKind = 'int' | 'str' | 'money';

export interface FieldSpec {
  kind: FieldKind;
  /** May be written by setfield (with this validator: the raw text → the stored value). */
  write?: (v: string) => string | number | null;
  /** May be answered by getfield. */
  read?: boolean;
  /** May be used as getfield's filter column. */
  filter?: boolean;
}

export interface TableSpec {
  table: 'tb_users' | 'tb_numbers' | 'tb_callforward' | 'tb_tariffs';
  /** The column setfield's rowid names. */
  key: 'id' | 'userid';
  /** The column holding the owning user's id (hierarchy check); null: the table belongs to the admins only. */
  owner: 'id' | 'userid' | null;
  fields: Record<string, FieldSpec>;
  /** Columns refused with a specific explanation. */
  refused: Record<string, string>;
}

const fail = (m: string): never => {
  throw new FieldError(m);
};

const PRINTABLE_BAD = /[\x00-\x08\x0b-\x1f\x7f]/;
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{1,60}$/;
const PHONE_RE = /^\+?[0-9]{2,20}$/;

export function text(max: number) {
  return (v: string): string => {
    if (v.length > max || PRINTABLE_BAD.test(v)) fail(`fieldvalue: at most ${max} printable characters`);
    return v;
  };
}

export function intRange(min: number, max: number) {
  return (v: string): number => {
    const t = v.trim();
    if (!/^-?\d{1,15}$/.test(t)) fail(`fieldvalue: expected an integer from ${min} to ${max}`);
    const n = Number(t);
    if (n < min || n > max) fail(`fieldvalue: expected an integer from ${min} to ${max}`);
    return n;
  };
}

const email = (v: string): string => {
  const t = v.trim();
  if (t && !EMAIL_RE.test(t)) fail('fieldvalue: not an e-mail address');
  return t;
};

const phone = (v: string): string => {
  const t = v.replace(/[\s()-]/g, '');
  if (t && !PHONE_RE.test(t)) fail('fieldvalue: expected a phone number (digits with an optional leading +)');
  return t;
};

const currency = (v: string): string => {
  const t = v.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(t)) fail('fieldvalue: expected a 3-letter ISO currency code such as USD');
  return t;
};

const bool01 = (v: string): number => {
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return 1;
  if (['0', 'false', 'no', 'off'].includes(t)) return 0;
  return fail('fieldvalue: expected 1 or 0 (true/false)');
};

const optionalId = (v: string): number | null => {
  const t = v.trim().toLowerCase();
  if (t === '' || t === 'null' || t === '0') return null;
  if (!/^\d{1,9}$/.test(t)) fail('fieldvalue: expected an id (or empty/0 for none)');
  return Number(t);
};

const userType = (v: string): number =>
  parseUserType(v) ?? fail('fieldvalue: expected srvadmin, admin, owner, reseller, support or enduser (or 1-6)');

const money = (v: string): number => {
  const n = parseAmount(v.trim());
  if (n === undefined || n < 0) fail('fieldvalue: expected a non-negative amount such as 0.05');
  return n!;
};

const forwardTarget = (v: string): string => {
  const t = v.trim();
  if (t && !/^[A-Za-z0-9+*#@._-]{1,64}$/.test(t))
    fail('fieldvalue: expected a number or SIP user (letters, digits, +*#@._-), or empty for none');
  return t;
};

const numberStatus = (v: string): string => {
  const t = v.trim().toLowerCase();
  if (!['free', 'locked', 'assigned'].includes(t)) fail('fieldvalue: expected free, locked or assigned');
  return t;
};

const readOnly = (kind: FieldKind, filter = false): FieldSpec => ({ kind, read: true, filter });

export const TABLES: Record<string, TableSpec> = {
  tb_users: {
    table: 'tb_users',
    key: 'id',
    owner: 'id',
    fields: {
      id: readOnly('int', true),
      username: readOnly('str', true),
      name: { kind: 'str', write: text(256), read: true, filter: true },
      email: { kind: 'str', write: email, read: true, filter: true },
      phone: { kind: 'str', write: phone, read: true, filter: true },
      did: readOnly('str', true),
      country: { kind: 'str', write: text(64), read: true },
      address: { kind: 'str', write: text(512), read: true },
      currency: { kind: 'str', write: currency, read: true },
      enabled: { kind: 'int', write: bool01, read: true },
      allowtransfer: { kind: 'int', write: bool01, read: true },
      tariffid: { kind: 'int', write: optionalId, read: true },
      parentid: { kind: 'int', write: intRange(0, 999_999_999), read: true, filter: true },
      type: { kind: 'int', write: userType, read: true },
      credit: readOnly('money'),
      created_at: readOnly('int'),
    },
    refused: {
      password_enc: 'passwords cannot be read or set here: use changepwd',
      password: 'passwords cannot be read or set here: use changepwd',
      credit: 'credit changes must go through the ledger: use addcredit',
      balance: 'credit changes must go through the ledger: use addcredit',
      forgot_answer_enc: 'the forgotten-password answer cannot be read or set with setfield/getfield',
      forgot_question: 'the forgotten-password question cannot be set with setfield',
      pin: 'the PIN authenticates alone: it cannot be read or set with setfield/getfield',
    },
  },
  tb_numbers: {
    table: 'tb_numbers',
    key: 'id',
    owner: 'userid',
    fields: {
      id: readOnly('int', true),
      number: readOnly('str', true),
      userid: { kind: 'int', write: intRange(0, 999_999_999), read: true, filter: true },
      status: { kind: 'str', write: numberStatus, read: true },
      locked_until: readOnly('int'),
      created_at: readOnly('int'),
    },
    refused: {},
  },
  tb_callforward: {
    table: 'tb_callforward',
    key: 'userid',
    owner: 'userid',
    fields: {
      userid: readOnly('int', true),
      always: { kind: 'str', write: forwardTarget, read: true },
      busy: { kind: 'str', write: forwardTarget, read: true },
      noanswer: { kind: 'str', write: forwardTarget, read: true },
      updated_at: readOnly('int'),
    },
    refused: {},
  },
  tb_tariffs: {
    table: 'tb_tariffs',
    key: 'id',
    owner: null,
    fields: {
      id: readOnly('int', true),
      planid: readOnly('int', true),
      prefix: readOnly('str', true),
      destination: { kind: 'str', write: text(128), read: true, filter: true },
      price: { kind: 'money', write: money, read: true },
      connectfee: { kind: 'money', write: money, read: true },
      minduration: { kind: 'int', write: intRange(0, 86_400), read: true },
      increment: { kind: 'int', write: intRange(1, 86_400), read: true },
      currency: readOnly('str'),
    },
    refused: {},
  },
};

/** The table spec for a request's table name (default tb_users); throws FieldError naming the allowed tables. */
export function tableSpec(name: string | undefined): TableSpec {
  const t = (name ?? '').trim().toLowerCase() || 'tb_users';
  if (!Object.prototype.hasOwnProperty.call(TABLES, t))
    fail(`table: "${short(t)}" is not allowed (allowed: ${Object.keys(TABLES).join(', ')})`);
  return TABLES[t]!;
}

type Use = 'write' | 'read' | 'filter';

/** The whitelisted column of `spec` for this use; throws FieldError with the reason or the allowed names. */
export function fieldSpec(spec: TableSpec, name: string | undefined, use: Use): { column: string; field: FieldSpec } {
  const f = (name ?? '').trim().toLowerCase();
  const param = use === 'write' ? 'fieldname' : use === 'read' ? 'retfieldname' : 'filterfieldname';
  if (!f) fail(`${param}: missing`);
  const refused = Object.prototype.hasOwnProperty.call(spec.refused, f) ? spec.refused[f] : undefined;
  const field = Object.prototype.hasOwnProperty.call(spec.fields, f) ? spec.fields[f] : undefined;
  const allowed =
    field && (use === 'write' ? field.write : use === 'read' ? field.read : field.filter) ? field : undefined;
  if (!allowed) {
    if (refused && !(field && use === 'read' && field.read)) fail(`${param}: ${f}: ${refused}`);
    const names = Object.entries(spec.fields)
      .filter(([, s]) => (use === 'write' ? s.write : use === 'read' ? s.read : s.filter))
      .map(([n]) => n);
    fail(
      `${param}: "${short(f)}" is not ` +
        `${use === 'write' ? 'settable' : use === 'read' ? 'readable' : 'a filter field'} in ${spec.table} ` +
        `(allowed: ${names.join(', ')})`,
    );
  }
  return { column: f, field: allowed! };
}

/**
 * Checks the fieldtype hint: '' / auto / 0 take the column's own type; int/integer/number accept only
 * integers; str/string/text/varchar accept any text; money/amount/decimal accept amounts.
 */
export function checkTypeHint(hint: string | undefined, value: string, param: 'fieldtype' | 'filterfieldtype'): void {
  const h = (hint ?? '').trim().toLowerCase();
  if (['', 'auto', '0'].includes(h)) return;
  if (['int', 'integer', 'number', 'numeric', 'num', 'bigint', 'bool', 'boolean'].includes(h)) {
    if (!/^-?\d{1,15}$/.test(value.trim()) && !(h.startsWith('bool') && /^(true|false)$/i.test(value.trim()))) {
      fail(`${param === 'fieldtype' ? 'fieldvalue' : 'filterfieldvalue'}: ${param} ${h} expects an integer`);
    }
    return;
  }
  if (['str', 'string', 'text', 'varchar', 'char', 'nvarchar'].includes(h)) return;
  if (['money', 'amount', 'decimal', 'float', 'double', 'real'].includes(h)) {
    if (!/^-?\d{1,12}([.,]\d{1,6})?$/.test(value.trim()))
      fail(`${param === 'fieldtype' ? 'fieldvalue' : 'filterfieldvalue'}: ${param} ${h} expects a number such as 1.25`);
    return;
  }
  fail(`${param}: expected int, str or money (or empty to use the column's type)`);
}

/** A stored value as getfield answers it (money columns as amounts). */
export function presentValue(field: FieldSpec, v: unknown): string {
  if (v === null || v === undefined) return '';
  if (field.kind === 'money') return formatAmount(Number(v));
  return String(v);
}

/** A filter value converted to the column's type (throws FieldError for an integer column given text). */
export function filterValue(field: FieldSpec, v: string): string | number {
  if (field.kind === 'int') {
    if (!/^-?\d{1,15}$/.test(v.trim())) fail('filterfieldvalue: expected an integer for this filter field');
    return Number(v.trim());
  }
  if (field.kind === 'money') return money(v);
  return v;
}

function short(s: string): string {
  return s.length > 40 ? s.slice(0, 40) + '…' : s;
}
