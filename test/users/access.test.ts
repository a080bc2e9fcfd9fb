/** The hierarchy rule (src/domain/accounts/access.ts) as a table: every caller type × target relation × verb. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allows,
  may,
  mayCreateType,
  mayOnOwner,
  seeScope,
  RELATIONS,
  VERBS,
  type AccountTree,
  type ParentKind,
  type Relation,
  type Verb,
} from '../../src/domain/accounts/access.js';
import { UserType, typeName } from '../../src/domain/accounts/types.js';
import type { User } from '../../src/domain/accounts/users.js';

const T = UserType;
type Row = Record<Verb, Relation[]>;
const ALL: Relation[] = [...RELATIONS];
const NOT_SELF: Relation[] = ALL.filter((r) => r !== 'self');
const PARENT_SUBTREE: Relation[] = ['self', 'below', 'parent', 'sibling', 'colleague'];

/** The expected table for a non-admin target, per caller type (and, for support, the caller's parent). */
const EXPECTED: Array<{ type: number; parent: ParentKind; row: Row }> = [
  { type: T.srvadmin, parent: 'none', row: { see: ALL, act: ALL, manage: ALL, pay: NOT_SELF } },
  { type: T.admin, parent: 'account', row: { see: ALL, act: ALL, manage: NOT_SELF, pay: NOT_SELF } },
  ...[T.owner, T.reseller].map((type) => ({
    type,
    parent: 'account' as ParentKind,
    row: { see: ['self', 'below'], act: ['self', 'below'], manage: ['below'], pay: ['below'] } as Row,
  })),
  {
    type: T.support,
    parent: 'account',
    row: { see: PARENT_SUBTREE, act: ['self'], manage: [], pay: ['parent', 'sibling'] },
  },
  { type: T.support, parent: 'admin', row: { see: ALL, act: ['self'], manage: [], pay: ['parent', 'sibling'] } },
  { type: T.support, parent: 'none', row: { see: ALL, act: ['self'], manage: [], pay: ['parent', 'sibling'] } },
  { type: T.enduser, parent: 'account', row: { see: ['self'], act: ['self'], manage: [], pay: ['parent', 'sibling'] } },
];

test('the rule as a table: every caller type × relation × verb (non-admin target)', () => {
  const types = new Set(EXPECTED.map((e) => e.type));
  assert.equal(types.size, 6, 'every user type has a row');
  for (const { type, parent, row } of EXPECTED)
    for (const verb of VERBS)
      for (const relation of RELATIONS) {
        const got = allows(type, verb, { relation, targetIsAdmin: false, callerParent: parent });
        assert.equal(got, row[verb].includes(relation), `${typeName(type)} (parent ${parent}) ${verb} ${relation}`);
      }
});

test('admin-type targets: act and manage reach them only in the own subtree, except for the srvadmin', () => {
  for (const { type, parent, row } of EXPECTED)
    for (const verb of VERBS)
      for (const relation of RELATIONS) {
        const guarded = (verb === 'act' || verb === 'manage') && type !== T.srvadmin;
        const expect = row[verb].includes(relation) && (!guarded || relation === 'self' || relation === 'below');
        const got = allows(type, verb, { relation, targetIsAdmin: true, callerParent: parent });
        assert.equal(got, expect, `${typeName(type)} ${verb} admin-type target (${relation})`);
      }
});

test('creating accounts: srvadmin any type, others only types below their own', () => {
  const types = [T.srvadmin, T.admin, T.owner, T.reseller, T.support, T.enduser];
  const below: Record<number, number[]> = {
    [T.srvadmin]: types,
    [T.admin]: [T.owner, T.reseller, T.support, T.enduser],
    [T.owner]: [T.support, T.enduser],
    [T.reseller]: [T.support, T.enduser],
    [T.support]: [T.enduser],
    [T.enduser]: [],
  };
  for (const c of types)
    for (const n of types)
      assert.equal(mayCreateType(c, n), below[c]!.includes(n), `${typeName(c)} creates ${typeName(n)}`);
});

/**
 * A small tree for the relations computed from parent ids:
 * root (srvadmin) ├─ ada (admin) └─ rita (reseller) ├─ sam (reseller) └─ carl
 *                                                   ├─ bob   ├─ sue (support)
 * root            └─ eve (enduser)
 */
function tree() {
  const users: User[] = [];
  const mk = (id: number, username: string, type: number, parentid: number) => {
    const u = { id, username, type, parentid, enabled: true } as User;
    users.push(u);
    return u;
  };
  const u = {
    root: mk(1, 'root', T.srvadmin, 0),
    ada: mk(2, 'ada', T.admin, 1),
    rita: mk(3, 'rita', T.reseller, 1),
    sam: mk(4, 'sam', T.reseller, 3),
    carl: mk(5, 'carl', T.enduser, 4),
    bob: mk(6, 'bob', T.enduser, 3),
    sue: mk(7, 'sue', T.support, 3),
    eve: mk(8, 'eve', T.enduser, 1),
  };
  const byId = new Map(users.map((x) => [x.id, x]));
  const t: AccountTree = {
    byId: async (id) => byId.get(id),
    isInSubtree: async (a, id) => {
      for (let x = byId.get(id); x; x = byId.get(x.parentid)) if (x.id === a) return true;
      return false;
    },
  };
  return { t, u };
}

test('relations come from the parent chain (may, mayOnOwner, seeScope)', async () => {
  const { t, u } = tree();
  const cases: Array<[User, Verb, User, boolean]> = [
    [u.rita, 'act', u.carl, true], // below, two levels down
    [u.sam, 'act', u.bob, false], // colleague of a reseller
    [u.sue, 'see', u.carl, true], // support sees its parent's subtree
    [u.sue, 'see', u.eve, false],
    [u.sue, 'act', u.bob, false],
    [u.bob, 'pay', u.sue, true], // sibling
    [u.bob, 'pay', u.rita, true], // parent
    [u.bob, 'pay', u.carl, false], // colleague
    [u.ada, 'manage', u.rita, true],
    [u.ada, 'manage', u.root, false], // another admin type, not below
    [u.ada, 'see', u.root, true],
    [u.root, 'manage', u.root, true],
    [u.ada, 'manage', u.ada, false],
  ];
  for (const [a, verb, b, expect] of cases)
    assert.equal(await may(t, a, verb, b), expect, `${a.username} ${verb} ${b.username}`);
  assert.equal(await mayOnOwner(t, u.rita, 'see', 0), false, 'the free pool is the server’s');
  assert.equal(await mayOnOwner(t, u.ada, 'act', 0), true);
  assert.equal(await mayOnOwner(t, u.rita, 'act', 999), false, 'a vanished owner: admins only');
  assert.equal(await mayOnOwner(t, u.bob, 'act', u.bob.id), true);
  assert.deepEqual(await seeScope(t, u.ada), { all: true });
  assert.deepEqual(await seeScope(t, u.rita), { all: false, rootId: u.rita.id });
  assert.deepEqual(await seeScope(t, u.sue), { all: false, rootId: u.rita.id });
  assert.equal(await seeScope(t, u.bob), undefined);
});
