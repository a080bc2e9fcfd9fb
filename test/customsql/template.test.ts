import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bindValues, compileTemplate, CustomSqlError } from '../../src/api/customsql/template.js';

const ctx = { userId: 42, username: 'alice', sparams: { sparam1: 'one', SPARAM2: 'two', Sparam10: 'ten' } };

describe('compileTemplate: placeholders', () => {
  it('replaces [USERID] with ? for sqlite and $1 for pg', () => {
    const s = compileTemplate('SELECT username, credit FROM tb_users WHERE id = [USERID]', 'sqlite');
    assert.deepEqual(s, {
      text: 'SELECT username, credit FROM tb_users WHERE id = ?',
      sync: true,
      kind: 'select',
      slots: [{ kind: 'userid' }],
    });
    const p = compileTemplate('SELECT username, credit FROM tb_users WHERE id = [USERID]', 'pg');
    assert.equal(p.text, 'SELECT username, credit FROM tb_users WHERE id = $1');
  });

  it('strips a leading * (sync) and keeps placeholder order, case-insensitively', () => {
    const c = compileTemplate('  *UPDATE tb_users SET name = [sparam1], note=[Username] WHERE id = [UserId]', 'pg');
    assert.equal(c.text, 'UPDATE tb_users SET name = $1, note=$2 WHERE id = $3');
    assert.equal(c.sync, true);
    assert.equal(c.kind, 'update');
    assert.deepEqual(c.slots, [{ kind: 'sparam', n: 1 }, { kind: 'username' }, { kind: 'userid' }]);
  });

  it('non-* DML is async; SELECT is always sync', () => {
    assert.equal(compileTemplate('UPDATE t SET a = 1', 'sqlite').sync, false);
    assert.equal(compileTemplate('INSERT INTO t (a) VALUES ([SPARAM99])', 'sqlite').sync, false);
    assert.equal(compileTemplate('DELETE FROM t WHERE id = [USERID]', 'sqlite').kind, 'delete');
    assert.equal(compileTemplate('select 1', 'sqlite').sync, true);
    assert.equal(compileTemplate('*select 1', 'sqlite').sync, true);
  });

  it('every occurrence gets its own slot (pg $n numbering)', () => {
    const c = compileTemplate('SELECT * FROM t WHERE a = [USERID] OR b = [USERID] OR c=[SPARAM3][USERID]', 'pg');
    assert.equal(c.text, 'SELECT * FROM t WHERE a = $1 OR b = $2 OR c=$3 $4');
    assert.equal(c.slots.length, 4);
  });

  it('leaves placeholders inside string literals, quoted identifiers and comments untouched', () => {
    const sql =
      "SELECT '[USERID]' AS a, 'it''s [SPARAM1]' AS b, \"[USERNAME]\" -- [SPARAM2]\nFROM t /* [SPARAM3] */ WHERE id = [USERID]";
    const c = compileTemplate(sql, 'sqlite');
    assert.equal(
      c.text,
      "SELECT '[USERID]' AS a, 'it''s [SPARAM1]' AS b, \"[USERNAME]\" -- [SPARAM2]\nFROM t /* [SPARAM3] */ WHERE id = ?",
    );
    assert.deepEqual(c.slots, [{ kind: 'userid' }]);
  });

  it('understands PG escape strings, dollar quotes and nested comments', () => {
    const sql =
      "SELECT E'\\' [USERID]; DROP' AS a, $q$ [USERID]; DROP TABLE x $q$ AS b, $$;$$ AS c /* a /* b */ [USERID] */ FROM t WHERE x = [USERNAME]";
    const c = compileTemplate(sql, 'pg');
    assert.deepEqual(c.slots, [{ kind: 'username' }]);
    assert.ok(c.text.endsWith('WHERE x = $1'));
  });

  it('treats SQLite [bracket] and `backtick` identifiers as identifiers', () => {
    const c = compileTemplate('SELECT [my col], `x;y` FROM t WHERE id = [USERID]', 'sqlite');
    assert.equal(c.text, 'SELECT [my col], `x;y` FROM t WHERE id = ?');
  });

  it('allows one trailing semicolon followed by whitespace only', () => {
    assert.equal(compileTemplate('SELECT 1 ;  \n ', 'sqlite').text, 'SELECT 1');
    assert.equal(compileTemplate("SELECT ';' FROM t;", 'pg').text, "SELECT ';' FROM t");
  });

  it('allows "timestamp with time zone" in PG but not a CTE', () => {
    assert.doesNotThrow(() => compileTemplate('SELECT now()::timestamp with time zone', 'pg'));
    assert.throws(
      () => compileTemplate('SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) q', 'pg'),
      CustomSqlError,
    );
  });

  it('keeps keywords that are inside literals/identifiers/comments harmless', () => {
    assert.doesNotThrow(() =>
      compileTemplate('SELECT \'drop table x; attach\' AS "create" FROM t -- pragma\n', 'sqlite'),
    );
    assert.doesNotThrow(() => compileTemplate('SELECT dropped, created_at, withdrawn FROM t', 'sqlite'));
  });
});

describe('compileTemplate: rejected statements', () => {
  const rejected: Array<[string, string]> = [
    ['multiple statements', 'SELECT 1; SELECT 2'],
    ['stacked DROP', 'SELECT 1; DROP TABLE t'],
    ['comment after ;', 'SELECT 1; -- x'],
    ['double ;', 'SELECT 1;;'],
    ['ATTACH', "ATTACH DATABASE 'x.db' AS x"],
    ['DETACH', 'DETACH DATABASE x'],
    ['PRAGMA', 'PRAGMA table_info(t)'],
    ['VACUUM', 'VACUUM'],
    ['REINDEX', 'REINDEX t'],
    ['ANALYZE', 'ANALYZE t'],
    ['CREATE', 'CREATE TABLE x (a int)'],
    ['DROP', 'DROP TABLE t'],
    ['ALTER', 'ALTER TABLE t ADD COLUMN b int'],
    ['TRUNCATE', 'TRUNCATE t'],
    ['GRANT', 'GRANT ALL ON t TO public'],
    ['REVOKE', 'REVOKE ALL ON t FROM public'],
    ['COPY', "COPY t TO '/tmp/x'"],
    ['load_extension', "SELECT load_extension('/tmp/evil.so')"],
    ['quoted load_extension', 'SELECT "load_extension"(\'/tmp/evil.so\')'],
    ['WITH', 'WITH c AS (SELECT 1) SELECT * FROM c'],
    [
      'recursive WITH in subquery',
      'SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c)',
    ],
    ['WITH hidden in DML', 'DELETE FROM t WHERE id IN (WITH c AS (SELECT 1) SELECT * FROM c)'],
    ['RETURNING', 'DELETE FROM t RETURNING *'],
    ['SELECT INTO', 'SELECT * INTO t2 FROM t'],
    ['REPLACE', 'REPLACE INTO t VALUES (1)'],
    ['EXPLAIN', 'EXPLAIN SELECT 1'],
    ['BEGIN', 'BEGIN'],
    ['VALUES', 'VALUES (1)'],
    ['parenthesised', '(SELECT 1)'],
    ['empty', '   '],
    ['only star', '*'],
    ['only a comment', '-- SELECT 1'],
    ['unterminated literal', "SELECT 'abc"],
    ['unterminated comment', 'SELECT 1 /* x'],
    ['raw $name parameter', 'SELECT * FROM t WHERE id = $id'],
    ['[SPARAM0]', 'SELECT [SPARAM0]'],
    ['[SPARAM100]', 'SELECT [SPARAM100]'],
    ['lower-case drop', 'select 1 from t where 1 = 1; drop table t'],
  ];
  for (const [name, sql] of rejected) {
    it(`rejects ${name}`, () => {
      for (const dialect of ['sqlite', 'pg'] as const) {
        assert.throws(
          () => compileTemplate(sql, dialect),
          (e: unknown) => e instanceof CustomSqlError && e.message.length > 0,
          `${dialect}: ${sql}`,
        );
      }
    });
  }

  it('rejects raw ?, :name, @name parameters in sqlite', () => {
    for (const sql of [
      'SELECT * FROM t WHERE id = ?',
      'SELECT * FROM t WHERE id = ?1',
      'SELECT * FROM t WHERE id = :id',
      'SELECT @id',
    ]) {
      assert.throws(() => compileTemplate(sql, 'sqlite'), /raw bind parameters/, sql);
    }
  });

  it('rejects raw $1 parameters and unterminated dollar quotes in pg', () => {
    assert.throws(() => compileTemplate('SELECT * FROM t WHERE id = $1', 'pg'), CustomSqlError);
    assert.throws(() => compileTemplate('SELECT $a$ abc', 'pg'), CustomSqlError);
  });

  it('gives clear messages', () => {
    assert.throws(() => compileTemplate('DROP TABLE t', 'sqlite'), /single SELECT, INSERT, UPDATE or DELETE/);
    assert.throws(() => compileTemplate('SELECT 1; SELECT 2', 'sqlite'), /single statement/);
    assert.throws(() => compileTemplate("SELECT load_extension('x')", 'sqlite'), /LOAD_EXTENSION/);
  });
});

describe('bindValues', () => {
  it('binds userid, username and sparams (keys matched case-insensitively)', () => {
    const c = compileTemplate('SELECT [USERID], [USERNAME], [SPARAM1], [SPARAM2], [SPARAM10]', 'sqlite');
    assert.deepEqual(bindValues(c.slots, ctx), [42, 'alice', 'one', 'two', 'ten']);
  });

  it('binds hostile values verbatim as data (never spliced)', () => {
    const evil = "x' OR '1'='1";
    const c = compileTemplate('SELECT * FROM t WHERE name = [SPARAM1]', 'sqlite');
    assert.equal(c.text, 'SELECT * FROM t WHERE name = ?');
    assert.deepEqual(bindValues(c.slots, { userId: 1, username: 'u', sparams: { sparam1: evil } }), [evil]);
  });

  it('rejects a missing sparam, naming it', () => {
    const c = compileTemplate('SELECT [SPARAM1], [SPARAM7]', 'pg');
    assert.throws(
      () => bindValues(c.slots, ctx),
      (e: unknown) => e instanceof CustomSqlError && /sparam7/.test(e.message),
    );
  });
});
