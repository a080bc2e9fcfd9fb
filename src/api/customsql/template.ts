/**
 * Compilation and validation of operator-defined "custom SQL" API commands
 * (the `customsql` column of tb_api).
 *
 * A template such as
 *
 *     *UPDATE tb_users SET name = [SPARAM1] WHERE id = [USERID]
 *
 * is turned into a parameterised statement (`?` for SQLite, `$1, $2, …` for
 * PostgreSQL) plus a list of slots describing which request value is bound to
 * each placeholder.  Request values are NEVER spliced into the SQL text.
 *
 * The template is lexed (string literals, quoted identifiers, comments, PG
 * dollar quotes) so that keywords and placeholders are only recognised in
 * "code" context.  Only one plain SELECT / INSERT / UPDATE / DELETE statement
 * is accepted; everything else is rejected with a {@link CustomSqlError}.
 */

import { DomainError } from '../../domain/errors.js';

export type CustomSqlDialect = 'sqlite' | 'pg';
export type CustomSqlKind = 'select' | 'insert' | 'update' | 'delete';
export type CustomSqlSlot = { kind: 'userid' } | { kind: 'username' } | { kind: 'sparam'; n: number };

export interface CompiledTemplate {
  /** SQL text with bound placeholders, leading `*` and trailing `;` removed. */
  text: string;
  /** true when the template started with `*` (run synchronously); always true for SELECT. */
  sync: boolean;
  kind: CustomSqlKind;
  /** One entry per placeholder occurrence, in placeholder order. */
  slots: CustomSqlSlot[];
}

export interface CustomSqlContext {
  userId: number;
  username: string;
  sparams: Record<string, string>;
}

/** Error raised for invalid templates, missing parameters, failing or timed-out queries. */
export class CustomSqlError extends DomainError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'input', { cause: options?.cause });
  }
}

const ALLOWED_VERBS = new Set(['select', 'insert', 'update', 'delete']);

/** Keywords / function names that must not appear anywhere (as tokens) in a custom SQL statement. */
const FORBIDDEN_TOKENS = new Set([
  'attach',
  'detach',
  'pragma',
  'vacuum',
  'reindex',
  'analyze',
  'analyse',
  'create',
  'drop',
  'alter',
  'truncate',
  'grant',
  'revoke',
  'copy',
  'load_extension',
  'with',
  'returning',
]);

/** Names that are also refused when written as a quoted identifier (e.g. `"load_extension"(...)`). */
const FORBIDDEN_QUOTED = new Set(['load_extension']);

const PLACEHOLDER_RE = /\[(USERID|USERNAME|SPARAM(\d+))\]/iy;

function isIdentStart(c: string): boolean {
  return /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80;
}
function isIdentPart(c: string): boolean {
  return /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80;
}
function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}

const RAW_PARAM_MSG = 'custom SQL must not contain raw bind parameters (use [USERID], [USERNAME], [SPARAMn])';

/**
 * Compile a custom SQL template for the given dialect.
 * @throws CustomSqlError when the template is not exactly one plain SELECT/INSERT/UPDATE/DELETE.
 */
export function compileTemplate(sql: string, dialect: CustomSqlDialect): CompiledTemplate {
  if (typeof sql !== 'string') throw new CustomSqlError('custom SQL must be a string');
  if (dialect !== 'sqlite' && dialect !== 'pg')
    throw new CustomSqlError(`unsupported custom SQL dialect: ${String(dialect)}`);

  let src = sql.replace(/^\s+/, '');
  let starred = false;
  if (src.startsWith('*')) {
    starred = true;
    src = src.slice(1);
  }

  let text = '';
  const slots: CustomSqlSlot[] = [];
  const words: string[] = []; // lower-cased unquoted identifiers/keywords, in order
  let firstCodeIsWord: boolean | undefined; // type of the first non-comment token
  let endOfStatement = -1; // length of `text` at the trailing semicolon
  const n = src.length;
  let i = 0;

  const fail = (msg: string): never => {
    throw new CustomSqlError(msg);
  };
  const code = (isWord: boolean): void => {
    if (firstCodeIsWord === undefined) firstCodeIsWord = isWord;
  };

  while (i < n) {
    const c = src[i]!;
    const next = src[i + 1] ?? '';

    if (isSpace(c)) {
      text += c;
      i++;
      continue;
    }
    if (endOfStatement >= 0) fail('custom SQL must contain a single statement (found text after ";")');

    // -- line comment
    if (c === '-' && next === '-') {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      text += src.slice(i, stop);
      i = stop;
      continue;
    }
    // /* block comment */ (PostgreSQL nests them, SQLite does not)
    if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (src[j] === '*' && src[j + 1] === '/') {
          depth--;
          j += 2;
        } else if (dialect === 'pg' && src[j] === '/' && src[j + 1] === '*') {
          depth++;
          j += 2;
        } else {
          j++;
        }
      }
      if (depth > 0) fail('custom SQL contains an unterminated /* comment');
      text += src.slice(i, j);
      i = j;
      continue;
    }
    code(isIdentStart(c));
    // 'string literal' ('' escapes; PostgreSQL E'...' strings also honour backslash escapes)
    if (c === "'") {
      const backslashEscapes =
        dialect === 'pg' && i > 0 && /[eE]/.test(src[i - 1]!) && (i < 2 || !isIdentPart(src[i - 2]!));
      const j = scanQuoted(src, i, "'", backslashEscapes);
      if (j < 0) fail('custom SQL contains an unterminated string literal');
      text += src.slice(i, j);
      i = j;
      continue;
    }
    // "quoted identifier" (and `backtick identifier` in SQLite)
    if (c === '"' || (dialect === 'sqlite' && c === '`')) {
      const j = scanQuoted(src, i, c, false);
      if (j < 0) fail('custom SQL contains an unterminated quoted identifier');
      const inner = src
        .slice(i + 1, j - 1)
        .split(c + c)
        .join(c)
        .toLowerCase();
      if (FORBIDDEN_QUOTED.has(inner)) fail(`custom SQL must not use ${inner}`);
      text += src.slice(i, j);
      i = j;
      continue;
    }
    // [PLACEHOLDER], or a [bracket identifier] in SQLite
    if (c === '[') {
      PLACEHOLDER_RE.lastIndex = i;
      const m = PLACEHOLDER_RE.exec(src);
      if (m) {
        const name = m[1]!.toUpperCase();
        if (name === 'USERID') slots.push({ kind: 'userid' });
        else if (name === 'USERNAME') slots.push({ kind: 'username' });
        else {
          if (!/^[1-9]\d?$/.test(m[2]!)) fail(`custom SQL placeholder ${m[0]} is invalid (use [SPARAM1] … [SPARAM99])`);
          slots.push({ kind: 'sparam', n: Number(m[2]) });
        }
        const ph = dialect === 'pg' ? `$${slots.length}` : '?';
        const before = text.length > 0 && isIdentPart(text[text.length - 1]!) ? ' ' : '';
        const after = i + m[0].length < n && isIdentPart(src[i + m[0].length]!) ? ' ' : '';
        text += before + ph + after;
        i += m[0].length;
        continue;
      }
      if (dialect === 'sqlite') {
        const end = src.indexOf(']', i + 1);
        if (end < 0) fail('custom SQL contains an unterminated [identifier]');
        const inner = src.slice(i + 1, end).toLowerCase();
        if (FORBIDDEN_QUOTED.has(inner)) fail(`custom SQL must not use ${inner}`);
        text += src.slice(i, end + 1);
        i = end + 1;
        continue;
      }
      text += c;
      i++;
      continue;
    }
    // $: PostgreSQL dollar quotes; otherwise a raw bind parameter ($1 in PG, $name in SQLite)
    if (c === '$') {
      if (dialect === 'pg') {
        const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(src.slice(i, i + 70));
        if (m) {
          const tag = m[0];
          const end = src.indexOf(tag, i + tag.length);
          if (end < 0) fail('custom SQL contains an unterminated dollar-quoted string');
          text += src.slice(i, end + tag.length);
          i = end + tag.length;
          continue;
        }
      }
      fail(RAW_PARAM_MSG);
    }
    if (
      dialect === 'sqlite' &&
      (c === '?' || ((c === ':' || c === '@' || c === '#') && (isIdentPart(next) || next === '$')))
    ) {
      fail(RAW_PARAM_MSG);
    }
    if (c === ';') {
      endOfStatement = text.length;
      i++;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(src[j]!)) j++;
      const word = src.slice(i, j);
      words.push(word.toLowerCase());
      text += word;
      i = j;
      continue;
    }
    text += c;
    i++;
  }

  if (endOfStatement >= 0) text = text.slice(0, endOfStatement);
  text = text.trim();

  const verb = words[0];
  if (verb === undefined || text === '') fail('custom SQL is empty');
  if (!firstCodeIsWord || !ALLOWED_VERBS.has(verb!)) {
    fail(
      `custom SQL must be a single SELECT, INSERT, UPDATE or DELETE ` +
        `statement${firstCodeIsWord && verb ? ` (got ${verb.toUpperCase()})` : ''}`,
    );
  }
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    if (w === 'with' && dialect === 'pg' && words[k + 1] === 'time' && words[k + 2] === 'zone') {
      continue; // the type name "timestamp with time zone", not a CTE
    }
    if (FORBIDDEN_TOKENS.has(w)) fail(`custom SQL must not use ${w.toUpperCase()}`);
  }
  if (verb === 'select' && words.includes('into')) fail('custom SQL SELECT must not use INTO');

  return { text, sync: starred || verb === 'select', kind: verb as CustomSqlKind, slots };
}

/** Returns the index just after the closing quote, or -1 when unterminated. */
function scanQuoted(src: string, start: number, quote: string, backslashEscapes: boolean): number {
  let j = start + 1;
  const n = src.length;
  while (j < n) {
    const ch = src[j]!;
    if (backslashEscapes && ch === '\\') {
      j += 2;
      continue;
    }
    if (ch === quote) {
      if (src[j + 1] === quote) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return -1;
}

function lookupSparam(sparams: Record<string, string>, n: number): string | undefined {
  const direct = sparams[`sparam${n}`] ?? sparams[`SPARAM${n}`];
  if (direct !== undefined) return direct;
  const want = `sparam${n}`;
  for (const [k, v] of Object.entries(sparams)) {
    if (k.toLowerCase() === want) return v;
  }
  return undefined;
}

/**
 * Produce the bind values for a compiled template's slots.
 * `sparams` keys are matched case-insensitively as `sparamN`.
 * @throws CustomSqlError naming the first missing sparamN.
 */
export function bindValues(slots: readonly CustomSqlSlot[], ctx: CustomSqlContext): unknown[] {
  return slots.map((slot) => {
    switch (slot.kind) {
      case 'userid':
        return ctx.userId;
      case 'username':
        return ctx.username;
      case 'sparam': {
        const v = lookupSparam(ctx.sparams ?? {}, slot.n);
        if (v === undefined || v === null) throw new CustomSqlError(`missing parameter sparam${slot.n}`);
        return String(v);
      }
    }
  });
}
