/**
 * Who a command acts for: the authenticated caller, or another account the caller names, checked with the one
 * hierarchy rule (src/domain/accounts/access.ts).
 */
import { ApiError } from '../types.js';
import type { CommandContext } from '../context.js';
import type { User } from '../../domain/accounts/users.js';
import { isAdminType } from '../../domain/accounts/types.js';
import { may, reachesBelow } from '../../domain/accounts/access.js';

/** The authenticated account; refused (403) without one. `need` says what authentication the command wants. */
export function callerOf(
  ctx: CommandContext,
  what: string,
  need = 'an authenticated user (authid with authpwd)',
): User {
  const u = ctx.caller.user;
  if (!u) throw new ApiError(`${what} needs ${need}`, 403);
  return u;
}

/**
 * The account a user command acts on: the caller, or the account `username` names when the caller may act on
 * it. `doing` words the refusal ("act on your own account"). Callers who manage every account learn that a
 * name does not exist; others get the same refusal either way.
 */
export async function actingOn(
  ctx: CommandContext,
  p: Record<string, string>,
  what: string,
  doing = 'act on your own account',
): Promise<User> {
  const caller = callerOf(ctx, what, 'a user (authid)');
  const name = (p.username ?? '').trim();
  if (!name || name === caller.username) return caller;
  const below = reachesBelow(caller.type, 'act');
  const shown = name.slice(0, 64);
  const denied = new ApiError(
    `${what}: you may only ${doing}${below ? ' or users below you' : ''} (username=${shown})`,
    403,
  );
  if (!below) throw denied;
  const u = await ctx.services.users.byUsername(name);
  if (!u) throw isAdminType(caller.type) ? new ApiError(`${what}: user "${shown}" not found`, 404) : denied;
  if (!(await may(ctx.services.users, caller, 'act', u))) throw denied;
  return u;
}
