/** Account commands: newuseri (admin add user with the document's u_* fields) and balance. */
import { ok, fail, ApiError } from '../types.js';
import type { CommandDef } from '../registry.js';
import { callerOf } from './target.js';
import { parseUserType, UserType, typeName } from '../../domain/accounts/types.js';
import { may, mayCreateType } from '../../domain/accounts/access.js';
import { formatAmount, parseAmount } from '../../domain/billing/amount.js';

const U_FIELDS = ['u_username', 'u_password', 'u_name', 'u_email', 'u_phone', 'u_currency', 'u_country', 'u_address'];

export const accountCommands: CommandDef[] = [
  {
    name: 'newuseri',
    aliases: ['newuser', 'adduser'],
    params: U_FIELDS,
    level: 6,
    description:
      'private add user from a trusted source ' +
      '(u_username,u_password,u_name,u_email,u_phone,u_currency,u_country,u_address; also u_type, u_parentid, ' +
      'u_credit, u_pin, u_did)',
    run: async (ctx, p) => {
      const s = ctx.services;
      const caller = callerOf(ctx, 'newuseri', 'an authenticated admin');
      let type: number = UserType.enduser;
      if (p.u_type) {
        const t = parseUserType(p.u_type);
        if (!t) return fail('u_type: expected srvadmin, admin, owner, reseller, support or enduser (or 1-6)');
        type = t;
      }
      if (!mayCreateType(caller.type, type)) {
        return fail(`u_type: a ${typeName(caller.type)} cannot create a ${typeName(type)}`, { legacyStatus: 403 });
      }
      let parentid = caller.id;
      if (p.u_parentid) {
        if (!/^\d+$/.test(p.u_parentid)) return fail('u_parentid: expected a user id');
        parentid = Number(p.u_parentid);
        const parent = await s.users.byId(parentid);
        if (!parent) return fail('u_parentid: no such user', { legacyStatus: 404 });
        if (!(await may(s.users, caller, 'see', parent)))
          return fail('u_parentid: not in your part of the hierarchy', { legacyStatus: 403 });
      }
      let credit = 0;
      if (p.u_credit) {
        const c = parseAmount(p.u_credit);
        if (c === undefined || c < 0) return fail('u_credit: expected a non-negative amount such as 10.50');
        credit = c;
      }
      const user = await s.users.create({
        username: p.u_username ?? '',
        password: p.u_password ?? '',
        type: type as 1,
        parentid,
        name: p.u_name,
        email: p.u_email,
        phone: p.u_phone,
        currency: p.u_currency,
        country: p.u_country,
        address: p.u_address,
        pin: p.u_pin,
        did: p.u_did,
      });
      if (credit > 0)
        await s.ledger.post({
          userId: user.id,
          amount: credit,
          reason: 'initial credit',
          ref: 'newuseri',
          actor: caller.id,
        });
      s.log.info({ user: user.username, id: user.id, by: caller.username }, 'user created');
      return ok(`user ${user.username} created with id ${user.id}`, {
        fields: { id: user.id, username: user.username, type: typeName(user.type), parentid: user.parentid },
      });
    },
  },
  {
    name: 'balance',
    params: [],
    level: 12,
    description: 'credit request',
    run: async (ctx) => {
      const user = ctx.caller.user;
      if (!user) throw new ApiError('balance needs a user (authid)', 403);
      const b = await ctx.services.ledger.balance(user.id);
      if (!b) throw new ApiError('user not found', 404);
      const credit = formatAmount(b.credit);
      return ok(`${credit} ${b.currency}`, { fields: { credit, currency: b.currency } });
    },
  },
];
