/**
 * The one rule for "may account A act on account B". Every command that names another account asks here.
 *
 * The hierarchy: srvadmin > admin > owner/reseller > support > end users; every account has a parent (parentid,
 * 0 for none), and an account's subtree is itself and everything below it through the parent chain.
 *
 * Where B stands seen from A (the first that applies):
 * - self: B is A;
 * - below: B is in A's subtree;
 * - parent: B is A's parent;
 * - sibling: B has A's parent;
 * - colleague: B is elsewhere in the subtree of A's parent;
 * - other: anything else.
 *
 * What A may do:
 * - see: read B's account and the rows B owns (search, getfield, rating, callrating);
 * - act: use B's account in a user command (numbers and features, calls, generated CDRs, rows B owns);
 * - manage: change B's account as B's manager (setfield on tb_users, password resets, addcredit);
 * - pay: send B credit from A's own balance (transfercredit).
 *
 * The table (RIGHTS below): which relations each verb reaches, per caller type. Besides it, one rule: act and
 * manage never reach an admin-type account (srvadmin, admin) outside A's own subtree unless A is the srvadmin,
 * so an admin cannot act on the server admin or on another admin. Rows of the free number pool (owner 0) belong
 * to the server: admin types only.
 */
import type { User } from './users.js';
import { UserType, isAdminType, rankOf } from './types.js';

export type Relation = 'self' | 'below' | 'parent' | 'sibling' | 'colleague' | 'other';
export type Verb = 'see' | 'act' | 'manage' | 'pay';

export const RELATIONS: readonly Relation[] = ['self', 'below', 'parent', 'sibling', 'colleague', 'other'];
export const VERBS: readonly Verb[] = ['see', 'act', 'manage', 'pay'];

/** The caller's parent, as far as the rule cares: none (parentid 0), an admin type, or another account. */
export type ParentKind = 'none' | 'admin' | 'account';

/** Where the target stands, seen from the caller. */
export interface Position {
  relation: Relation;
  /** The target is an admin type (srvadmin or admin). */
  targetIsAdmin: boolean;
  /** The caller's parent (support users see what their parent manages). */
  callerParent: ParentKind;
}

const EVERY = RELATIONS;
const NOT_SELF = RELATIONS.filter((r) => r !== 'self');
const OWN_SUBTREE: readonly Relation[] = ['self', 'below'];
/** The subtree of the caller's parent: the parent, its other accounts and the caller's own subtree. */
const PARENT_SUBTREE: readonly Relation[] = ['self', 'below', 'parent', 'sibling', 'colleague'];

interface Rights {
  /** `as-parent`: the subtree of the caller's parent; every account when the parent is an admin or none. */
  see: readonly Relation[] | 'as-parent';
  act: readonly Relation[];
  manage: readonly Relation[];
  pay: readonly Relation[];
  /** act and manage reach admin-type accounts outside the caller's own subtree. */
  overAdmins: boolean;
}

const MANAGER: Rights = { see: OWN_SUBTREE, act: OWN_SUBTREE, manage: ['below'], pay: ['below'], overAdmins: false };

/** The rights of each user type (unknown types are end users). */
export const RIGHTS: Readonly<Record<number, Rights>> = {
  [UserType.srvadmin]: { see: EVERY, act: EVERY, manage: EVERY, pay: NOT_SELF, overAdmins: true },
  [UserType.admin]: { see: EVERY, act: EVERY, manage: NOT_SELF, pay: NOT_SELF, overAdmins: false },
  [UserType.owner]: MANAGER,
  [UserType.reseller]: MANAGER,
  [UserType.support]: { see: 'as-parent', act: ['self'], manage: [], pay: ['parent', 'sibling'], overAdmins: false },
  [UserType.enduser]: { see: ['self'], act: ['self'], manage: [], pay: ['parent', 'sibling'], overAdmins: false },
};

function rightsOf(type: number): Rights {
  return RIGHTS[type] ?? RIGHTS[UserType.enduser]!;
}

function reach(r: Rights, verb: Verb, parent: ParentKind): readonly Relation[] {
  if (verb !== 'see') return r[verb];
  if (r.see !== 'as-parent') return r.see;
  return parent === 'account' ? PARENT_SUBTREE : EVERY;
}

/** The rule itself: may a caller of type `callerType` do `verb` to a target at `pos`? */
export function allows(callerType: number, verb: Verb, pos: Position): boolean {
  const r = rightsOf(callerType);
  if (!reach(r, verb, pos.callerParent).includes(pos.relation)) return false;
  const mine = pos.relation === 'self' || pos.relation === 'below';
  if ((verb === 'act' || verb === 'manage') && pos.targetIsAdmin && !mine && !r.overAdmins) return false;
  return true;
}

/** Whether the caller's type reaches accounts below it with `verb` (for the wording of refusals). */
export function reachesBelow(callerType: number, verb: Verb): boolean {
  return reach(rightsOf(callerType), verb, 'account').includes('below');
}

/** A srvadmin may create every type; everyone else only types ranked below their own. */
export function mayCreateType(callerType: number, newType: number): boolean {
  return callerType === UserType.srvadmin || rankOf(newType) > rankOf(callerType);
}

/** What the rule needs to know about accounts (UserService provides it). */
export interface AccountTree {
  byId(id: number): Promise<User | undefined>;
  /** True when `ancestorId` is `userId` or one of its parents. */
  isInSubtree(ancestorId: number, userId: number): Promise<boolean>;
}

async function parentKind(tree: AccountTree, caller: User): Promise<ParentKind> {
  if (!caller.parentid) return 'none';
  const p = await tree.byId(caller.parentid);
  return p && isAdminType(p.type) ? 'admin' : 'account';
}

/** Where `target` stands, seen from `caller` (parent and sibling first: they need no look-up). */
async function relationOf(tree: AccountTree, caller: User, target: User): Promise<Relation> {
  if (target.id === caller.id) return 'self';
  // in a tree the parent and the siblings are never below the caller, so these can come first
  if (caller.parentid && target.id === caller.parentid) return 'parent';
  if (caller.parentid && target.parentid === caller.parentid) return 'sibling';
  if (await tree.isInSubtree(caller.id, target.id)) return 'below';
  if (caller.parentid && (await tree.isInSubtree(caller.parentid, target.id))) return 'colleague';
  return 'other';
}

/** May `caller` do `verb` to `target`? Looks up only what the caller's row of the table needs. */
export async function may(tree: AccountTree, caller: User, verb: Verb, target: User): Promise<boolean> {
  const r = rightsOf(caller.type);
  const callerParent = verb === 'see' && r.see === 'as-parent' ? await parentKind(tree, caller) : 'account';
  const reached = reach(r, verb, callerParent);
  if (!reached.length) return false;
  const targetIsAdmin = isAdminType(target.type);
  const guarded = (verb === 'act' || verb === 'manage') && targetIsAdmin && !r.overAdmins;
  if (reached.length === RELATIONS.length && !guarded) return true;
  return allows(caller.type, verb, { relation: await relationOf(tree, caller, target), targetIsAdmin, callerParent });
}

/**
 * May `caller` do `verb` to a row owned by account `ownerId`? Owner 0 (the free pool) and owners that no longer
 * exist are the server's: admin types only.
 */
export async function mayOnOwner(tree: AccountTree, caller: User, verb: Verb, ownerId: number): Promise<boolean> {
  if (ownerId === caller.id)
    return allows(caller.type, verb, { relation: 'self', targetIsAdmin: false, callerParent: 'none' });
  const owner = ownerId ? await tree.byId(ownerId) : undefined;
  if (!owner) return isAdminType(caller.type);
  return may(tree, caller, verb, owner);
}

/** Every account, or the subtree under (and including) rootId. */
export type Scope = { all: true } | { all: false; rootId: number };

/**
 * What `caller` may see of the user base as one query scope (the `see` row of the table as a subtree);
 * undefined when they see only themselves (end users: public look-up only).
 */
export async function seeScope(tree: AccountTree, caller: User): Promise<Scope | undefined> {
  const parent = await parentKind(tree, caller);
  const seen = reach(rightsOf(caller.type), 'see', parent);
  if (seen.includes('other')) return { all: true };
  if (seen.includes('colleague')) {
    // a parent that no longer exists leaves the caller their own subtree
    return (await tree.byId(caller.parentid))
      ? { all: false, rootId: caller.parentid }
      : { all: false, rootId: caller.id };
  }
  if (seen.includes('below')) return { all: false, rootId: caller.id };
  return undefined;
}
