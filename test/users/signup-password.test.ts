/** newuseru (public sign-up), changepwd and the forgotten-password flow, through the whole API pipeline. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, API_KEY, ADMIN_PASSWORD, type TestServer } from '../helpers/server.js';
import { src } from '../helpers/source.js';
import { caller, makeHierarchy, pw, LOCAL, REMOTE } from './helpers.js';
import { passwordProblem, randomPassword } from '../../src/domain/accounts/passwords.js';

let t: TestServer;
let ids: Record<string, number>;
let call: ReturnType<typeof caller>['call'];
let as: ReturnType<typeof caller>['as'];

before(async () => {
  t = await startTestServer({ apilimitip: '0', apilimituser: '0', authfailban: '4' });
  ({ call, as } = caller(t));
  ids = await makeHierarchy(t);
});
after(async () => {
  await t.srv.services.dbRunner.close();
  await t.stop();
});

const signup = (p: Record<string, string>, ip = '198.18.0.1') => call('newuseru', { authkey: API_KEY, ...p }, src(ip));
const auth = (user: string, password: string, ip = '198.18.9.9') =>
  call('balance', { authkey: API_KEY, authid: user, authpwd: password }, src(ip));

test('password rules', () => {
  assert.match(passwordProblem('Ab1', 'x', 'p')!, /at least 8/);
  assert.match(passwordProblem('12345678', 'x', 'p')!, /all digits/);
  assert.match(passwordProblem('abcdefgh', 'x', 'p')!, /letters and also digits or symbols/);
  assert.match(passwordProblem('Kate2024x', 'kate2024X', 'p')!, /username/);
  assert.equal(passwordProblem('abcdefg!', 'x', 'p'), undefined);
  for (let i = 0; i < 200; i++) assert.equal(passwordProblem(randomPassword(), 'x', 'p'), undefined);
});

test('newuseru: off by default, then validated, duplicates refused, end user under the server admin', async () => {
  const off = await signup({ u_username: 'kate', u_password: 'Kate-secret-9', u_email: 'kate@example.com' });
  assert.equal(off.ok, false);
  assert.equal(off.text, 'public sign-up is disabled (set publicsignup=true)');
  assert.equal(await t.srv.services.users.byUsername('kate'), undefined);

  t.srv.services.config.persist({ publicsignup: 'true' });
  // the authkey is still required from an untrusted source
  assert.match(
    (
      await call(
        'newuseru',
        { u_username: 'kate', u_password: 'Kate-secret-9', u_email: 'kate@example.com' },
        src('198.18.0.1'),
      )
    ).text,
    /authkey required/,
  );

  const base = { u_username: 'kate', u_password: 'Kate-secret-9', u_email: 'kate@example.com' };
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ u_password: 'short1' }, /u_password: at least 8/],
    [{ u_password: '1234567890' }, /u_password: must not be all digits/],
    [{ u_password: 'onlyletters' }, /u_password: needs letters/],
    [{ u_password: 'KATE' + 'kate'.slice(4), u_username: 'kate' }, /u_password/],
    [{ u_username: 'kate1234', u_password: 'KATE1234' }, /u_password: must not be the username/],
    [{ u_email: '' }, /u_email: required/],
    [{ u_email: 'not-an-email' }, /u_email/],
    [{ u_username: 'bad name' }, /u_username/],
    [{ u_currency: 'dollars' }, /u_currency/],
    [{ u_phone: 'call me' }, /u_phone/],
    [{ u_forgotquestion: 'Pet?' }, /give both or neither/],
    [{ u_parentid: String(ids.bob) }, /u_parentid: no owner or reseller/],
    [{ u_parentid: '999999' }, /u_parentid: no owner or reseller/],
    [{ u_username: 'bob' }, /already taken/],
    [{ u_email: 'BOB@example.com' }, /u_email: already used/],
  ];
  for (const [over, re] of cases) {
    const r = await signup({ ...base, ...over });
    assert.equal(r.ok, false, JSON.stringify(over));
    assert.match(r.text, re, JSON.stringify(over));
  }
  assert.equal(await t.srv.services.users.byUsername('kate'), undefined, 'bad input creates nothing');
  assert.equal(await t.srv.services.users.byUsername('kate1234'), undefined);

  const r = await signup({
    ...base,
    u_name: 'Kate K',
    u_country: 'HU',
    u_currency: 'eur',
    u_type: 'admin',
    u_credit: '100',
  });
  assert.equal(r.ok, true, r.text);
  assert.match(r.text, /^user kate created with id \d+$/);
  const kate = (await t.srv.services.users.byUsername('kate'))!;
  assert.equal(kate.type, 6, 'u_type is ignored: always an end user');
  assert.equal(kate.parentid, ids.admin);
  assert.equal(kate.currency, 'EUR');
  assert.equal((await t.srv.services.ledger.balance(kate.id))!.credit, 0, 'u_credit is ignored');
  assert.equal((await auth('kate', 'Kate-secret-9')).ok, true);

  // u_parentid: an owner/reseller that exists
  const r2 = await signup(
    { u_username: 'kid', u_password: 'Kid-secret-9', u_email: 'kid@example.com', u_parentid: String(ids.rita) },
    '198.18.0.2',
  );
  assert.equal(r2.ok, true, r2.text);
  assert.equal((await t.srv.services.users.byUsername('kid'))!.parentid, ids.rita);
});

test('newuseru: at most 5 successful sign-ups per IP and hour', async () => {
  t.srv.services.config.persist({ publicsignup: 'true' });
  const ip = '198.18.1.1';
  for (let i = 0; i < 5; i++) {
    const r = await signup(
      { u_username: `cap${i}`, u_password: `Cap-secret-${i}x`, u_email: `cap${i}@example.com` },
      ip,
    );
    assert.equal(r.ok, true, r.text);
  }
  const sixth = await signup({ u_username: 'cap5', u_password: 'Cap-secret-5x', u_email: 'cap5@example.com' }, ip);
  assert.equal(sixth.ok, false);
  assert.match(sixth.text, /too many sign-ups from 198\.18\.1\.1: at most 5 per hour/);
  assert.equal(await t.srv.services.users.byUsername('cap5'), undefined);
  assert.equal(
    (await signup({ u_username: 'cap5', u_password: 'Cap-secret-5x', u_email: 'cap5@example.com' }, '198.18.1.2')).ok,
    true,
  );
});

test('changepwd: own password needs the old one; managers reset accounts below them only', async () => {
  // level: an anonymous remote caller is refused
  assert.equal((await call('changepwd', { newpassword: 'Whatever-1' })).ok, false);

  const ip = src('198.18.2.1');
  assert.match((await as('bob', 'changepwd', { newpassword: 'Bob-new-pass-2' })).text, /oldpassword: required/);
  const wrong = await as('bob', 'changepwd', { newpassword: 'Bob-new-pass-2', oldpassword: 'nope' }, ip);
  assert.equal(wrong.ok, false);
  assert.equal(wrong.text, 'oldpassword: wrong password');
  assert.match(
    (await as('bob', 'changepwd', { newpassword: '12345678', oldpassword: pw('bob') })).text,
    /newpassword: must not be all digits/,
  );
  assert.match(
    (await as('bob', 'changepwd', { newpassword: 'Bob', oldpassword: pw('bob') })).text,
    /newpassword: at least 8/,
  );
  assert.equal((await auth('bob', pw('bob'))).ok, true, 'unchanged after refusals');

  const good = await as('bob', 'changepwd', { newpassword: 'Bob-new-pass-2', oldpassword: pw('bob') });
  assert.equal(good.ok, true, good.text);
  assert.equal(good.text, 'password changed for bob');
  assert.equal(
    (await auth('bob', pw('bob'), '198.18.2.9')).ok,
    false,
    'the cache was cleared: the old password is gone',
  );
  assert.equal((await auth('bob', 'Bob-new-pass-2')).ok, true);

  // an end user cannot act on another account
  const other = await as('carl', 'changepwd', {
    username: 'bob',
    newpassword: 'Hacked-pass-1',
    oldpassword: pw('carl'),
  });
  assert.equal(other.ok, false);
  assert.match(other.text, /no such user in your part of the hierarchy/);
  assert.equal((await auth('bob', 'Bob-new-pass-2')).ok, true);

  // reseller rita resets carl (below her reseller sam) without the old password
  const reset = await as('rita', 'changepwd', { username: 'carl', newpassword: 'Carl-reset-3' });
  assert.equal(reset.ok, true, reset.text);
  assert.equal((await auth('carl', 'Carl-reset-3')).ok, true);
  // … but not eve (outside her subtree), nor her parent, nor an admin
  for (const u of ['eve', 'admin', 'ada']) {
    const r = await as('rita', 'changepwd', { username: u, newpassword: 'Hacked-pass-1' });
    assert.equal(r.ok, false, u);
    assert.match(r.text, /no such user in your part of the hierarchy/);
  }
  assert.equal((await auth('eve', pw('eve'))).ok, true);
  // sub-reseller sam cannot reach bob (rita's)
  assert.equal((await as('sam', 'changepwd', { username: 'bob', newpassword: 'Hacked-pass-1' })).ok, false);
  // support cannot reset anyone
  assert.equal((await as('sue', 'changepwd', { username: 'bob', newpassword: 'Hacked-pass-1' })).ok, false);
  // the admin ada may reset end users but not the server admin
  assert.equal((await as('ada', 'changepwd', { username: 'eve', newpassword: 'Eve-reset-44' })).ok, true);
  assert.equal((await as('ada', 'changepwd', { username: 'admin', newpassword: 'Hacked-pass-1' })).ok, false);
  assert.equal((await auth('admin', ADMIN_PASSWORD)).ok, true);
  // the server admin resets anyone; a trusted source acting for a user needs no old password
  assert.equal(
    (
      await call('changepwd', {
        authid: 'admin',
        authpwd: ADMIN_PASSWORD,
        authkey: API_KEY,
        username: 'ada',
        newpassword: 'Ada-reset-55',
      })
    ).ok,
    true,
  );
  assert.equal((await call('changepwd', { username: 'sam', newpassword: 'Sam-local-66' }, LOCAL)).ok, true);
  const samAuth = await auth('sam', 'Sam-local-66');
  assert.equal(samAuth.ok, true, samAuth.text);
  assert.equal(
    (await auth('admin', ADMIN_PASSWORD)).ok,
    true,
    'username names the target: the trusted caller (server admin) keeps its password',
  );
});

test('forgotten password: question, wrong answers hand out nothing and count toward a ban, right answer resets', async () => {
  t.srv.services.config.persist({ publicsignup: 'true' });
  const r = await signup(
    {
      u_username: 'fay',
      u_password: 'Fay-secret-77',
      u_email: 'Fay@Example.com',
      u_forgotquestion: 'First pet?',
      u_forgotanswer: '  Rex  The Dog ',
    },
    '198.18.3.1',
  );
  assert.equal(r.ok, true, r.text);
  const row = await t.srv.services.storage.db
    .selectFrom('tb_users')
    .select(['forgot_question', 'forgot_answer_enc'])
    .where('username', '=', 'fay')
    .executeTakeFirstOrThrow();
  assert.equal(row.forgot_question, 'First pet?');
  assert.ok(row.forgot_answer_enc && !/rex/i.test(row.forgot_answer_enc), 'the answer is stored encrypted');

  const q = await call('forgotpasswordquestion', { authkey: API_KEY, email: 'fay@example.com' });
  assert.equal(q.ok, true, q.text);
  assert.equal(q.text, 'First pet?');
  assert.deepEqual(q.fields, { question: 'First pet?' });
  // unknown e-mail and an account without a question: the same answer
  const unknown = await call('forgotpasswordquestion', { authkey: API_KEY, email: 'nobody@example.com' });
  const noQuestion = await call('forgotpasswordquestion', { authkey: API_KEY, email: 'bob@example.com' });
  assert.equal(unknown.ok, false);
  assert.deepEqual(unknown, noQuestion);
  assert.equal(unknown.text, 'no password question is set for this e-mail');
  assert.match((await call('forgotpasswordquestion', { email: 'fay@example.com' })).text, /authkey required/);

  // wrong answers: nothing handed out, each counts as an authentication failure of the IP (authfailban=4)
  const bad = src('198.18.3.50');
  for (let i = 0; i < 3; i++) {
    const w = await call(
      'forgotpasswordanswer',
      { authkey: API_KEY, email: 'fay@example.com', forgotpasswordanswer: 'Tom' },
      bad,
    );
    assert.equal(w.ok, false);
    assert.equal(w.fields, undefined);
    assert.equal(w.text, 'wrong answer (or no password question is set for this e-mail)');
  }
  const unknownAns = await call(
    'forgotpasswordanswer',
    { authkey: API_KEY, email: 'nobody@example.com', forgotpasswordanswer: 'Tom' },
    bad,
  );
  assert.equal(unknownAns.text, 'wrong answer (or no password question is set for this e-mail)');
  assert.ok(t.srv.services.bans.isBanned('198.18.3.50'), 'the fourth failure banned the IP');
  assert.match(
    (
      await call(
        'forgotpasswordanswer',
        { authkey: API_KEY, email: 'fay@example.com', forgotpasswordanswer: 'rex the dog' },
        bad,
      )
    ).text,
    /banned/,
  );
  assert.equal((await auth('fay', 'Fay-secret-77')).ok, true, 'password unchanged');

  // the right answer (case and white space ignored) from another address resets the password
  const good = await call(
    'forgotpasswordanswer',
    { authkey: API_KEY, email: 'FAY@example.com', forgotpasswordanswer: 'REX the   dog' },
    src('198.18.3.51'),
  );
  assert.equal(good.ok, true, good.text);
  assert.equal(good.fields!.username, 'fay');
  const newPw = String(good.fields!.password);
  assert.equal(passwordProblem(newPw, 'fay', 'p'), undefined);
  assert.ok(good.text.includes(newPw));
  assert.equal((await auth('fay', 'Fay-secret-77', '198.18.3.60')).ok, false);
  assert.equal((await auth('fay', newPw)).ok, true);
});

test('forgotten password: at most 5 wrong answers per e-mail and hour, from any address', async () => {
  t.srv.services.config.persist({ publicsignup: 'true' });
  assert.equal(
    (
      await signup(
        {
          u_username: 'gus',
          u_password: 'Gus-secret-77',
          u_email: 'gus@example.com',
          u_forgotquestion: 'Town?',
          u_forgotanswer: 'Szeged',
        },
        '198.18.4.1',
      )
    ).ok,
    true,
  );
  for (let i = 0; i < 5; i++) {
    const w = await call(
      'forgotpasswordanswer',
      { authkey: API_KEY, email: 'gus@example.com', forgotpasswordanswer: `guess${i}` },
      src(`198.18.4.${10 + i}`),
    );
    assert.equal(w.ok, false);
  }
  const locked = await call(
    'forgotpasswordanswer',
    { authkey: API_KEY, email: 'gus@example.com', forgotpasswordanswer: 'Szeged' },
    src('198.18.4.30'),
  );
  assert.equal(locked.ok, false);
  assert.match(locked.text, /too many wrong answers for this e-mail: try again in \d+ minute/);
  assert.equal(locked.fields, undefined);
  assert.equal((await auth('gus', 'Gus-secret-77')).ok, true);
});
