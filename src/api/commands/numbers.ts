/**
 * Numbers and features: addnumbers, delnumber, numbers, assignnumber, freenumber (DID pool administration),
 * getphonenumber, lockphonenumber, cli,
 * addcallbacknumber, callbackaccessnumber, callforward, getconfroom. The work is in NumberService.
 */
import { ok, fail, type ApiResult } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { User } from '../../domain/accounts/users.js';
import { actingOn, callerOf } from './target.js';
import { mayOnOwner } from '../../domain/accounts/access.js';
import { NumberService, type ForwardSettings, type OwnedNumber } from '../../domain/numbers/service.js';

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

const iso = (ms: number) => new Date(ms).toISOString();

function listAnswer(what: string, user: User, list: OwnedNumber[]): ApiResult {
  return ok(
    `${list.length} ${what}(s) of ${user.username}${list.length ? ': ' + list.map((n) => n.number).join(',') : ''}`,
    {
      fields: { username: user.username, count: list.length },
      columns: ['number', 'created'],
      rows: list.map((n) => ({ number: n.number, created: iso(n.createdAt) })),
    },
  );
}

function forwardAnswer(user: User, f: ForwardSettings, changed: boolean): ApiResult {
  const show = (v: string) => v || 'off';
  return ok(
    `call forward of ${user.username}${changed ? ' set' : ''}: always=${show(f.always)}, busy=${show(f.busy)}, ` +
      `noanswer=${show(f.noanswer)}`,
    {
      fields: { username: user.username, always: f.always, busy: f.busy, noanswer: f.noanswer },
    },
  );
}

export const numberCommands: CommandDef[] = [
  {
    name: 'addnumbers',
    params: ['numbers', 'from', 'count'],
    level: 6,
    description:
      'add phone numbers (DIDs) to the free pool: numbers=N1,N2,… (comma or space separated) and/or ' +
      'from=FIRST&count=N (consecutive, at most 10000)',
    run: async (ctx, p) => {
      const list = NumberService.parseNumberList(p.numbers ?? p.number, p.from, p.count);
      const r = await ctx.services.numbers.addNumbers(list);
      ctx.services.log.info(
        { added: r.added, skipped: r.skipped, by: ctx.caller.user?.username },
        'numbers added to the pool',
      );
      return ok(`added ${r.added} number(s) to the pool${r.skipped ? ` (${r.skipped} already in the pool)` : ''}`, {
        fields: { added: r.added, skipped: r.skipped },
      });
    },
  },
  {
    name: 'delnumber',
    params: ['number'],
    level: 6,
    description: 'remove a free phone number from the pool',
    run: async (ctx, p) => {
      if (!p.number) return fail('number: which number to remove (delnumber number=N)', { legacyStatus: 421 });
      const n = await ctx.services.numbers.deleteNumber(p.number);
      ctx.services.log.info({ number: n, by: ctx.caller.user?.username }, 'number removed from the pool');
      return ok(`number ${n} removed from the pool`, { fields: { number: n } });
    },
  },
  {
    name: 'numbers',
    params: ['status'],
    level: 6,
    description:
      'the DID pool: number, status (free, locked, assigned; a lock that ran out reads free), username, lock ' +
      'expiry; status= lists one status only',
    run: async (ctx, p) => {
      const want = (p.status ?? '').trim().toLowerCase();
      if (want && !['free', 'locked', 'assigned'].includes(want))
        return fail(`status: expected free, locked or assigned, got "${want.slice(0, 20)}"`);
      const all = await ctx.services.numbers.listNumbers();
      const list = want ? all.filter((n) => n.status === want) : all;
      const count = (st: string) => all.filter((n) => n.status === st).length;
      return ok(`${list.length} number(s) in the pool (${count('free')} free)`, {
        fields: { count: list.length, free: count('free'), locked: count('locked'), assigned: count('assigned') },
        columns: ['number', 'status', 'username', 'userid', 'lockeduntil', 'created'],
        rows: list.map((n) => ({
          number: n.number,
          status: n.status,
          username: n.username,
          userid: n.userid,
          lockeduntil: n.lockedUntil ? iso(n.lockedUntil) : '',
          created: iso(n.createdAt),
        })),
      });
    },
  },
  {
    name: 'assignnumber',
    params: ['number', 'username'],
    level: 6,
    description: "assign a free number of the pool to a user (set as the user's did when they have none)",
    run: async (ctx, p) => {
      if (!p.number) return fail('number: which pool number to assign', { legacyStatus: 421 });
      if (!(p.username ?? '').trim()) return fail('username: the user to assign it to', { legacyStatus: 421 });
      const user = await actingOn(ctx, p, 'assignnumber');
      const r = await ctx.services.numbers.assignNumber(p.number, user.id);
      if (r.didSet) ctx.services.users.clearCache();
      ctx.services.log.info(
        { number: r.number, user: user.username, by: ctx.caller.user?.username },
        'number assigned by hand',
      );
      return ok(`number ${r.number} assigned to ${user.username}`, {
        fields: { number: r.number, username: user.username, did: r.didSet ? 1 : 0 },
      });
    },
  },
  {
    name: 'freenumber',
    params: ['number'],
    level: 6,
    description: "put an assigned or locked number back into the free pool (the user's did cleared if it was it)",
    run: async (ctx, p) => {
      if (!p.number) return fail('number: which pool number to free', { legacyStatus: 421 });
      const caller = callerOf(ctx, 'freenumber');
      const s = ctx.services.numbers;
      const row = await s.poolRow(p.number);
      // a number of an account the caller may not act on is refused as if it were not there
      if (!row || !(await mayOnOwner(ctx.services.users, caller, 'act', row.userid)))
        return fail(`number ${row?.number ?? p.number.trim().slice(0, 40)} is not in the pool`, { legacyStatus: 404 });
      const r = await s.freeNumber(row.number);
      if (r.didCleared) ctx.services.users.clearCache();
      ctx.services.log.info({ number: r.number, userid: r.userid, by: caller.username }, 'number freed');
      return ok(`number ${r.number} is free again`, { fields: { number: r.number, userid: r.userid } });
    },
  },
  {
    name: 'getphonenumber',
    params: [],
    level: 12,
    description:
      'assign a phone number from the free pool to the caller (the one they locked, else the one they have unless ' +
      'new=1, else a free one)',
    run: async (ctx, p) => {
      const user = await actingOn(ctx, p, 'getphonenumber');
      const r = await ctx.services.numbers.getPhoneNumber(user.id, truthy(p.new));
      if (r.didSet) ctx.services.users.clearCache();
      if (r.source !== 'existing')
        ctx.services.log.info({ number: r.number, user: user.username, from: r.source }, 'phone number assigned');
      return ok(r.number, { fields: { number: r.number, username: user.username } });
    },
  },
  {
    name: 'lockphonenumber',
    params: ['number'],
    level: 12,
    description: 'reserve a free phone number (or number=N) for numberlocktime seconds; getphonenumber then assigns it',
    run: async (ctx, p) => {
      const user = await actingOn(ctx, p, 'lockphonenumber');
      const r = await ctx.services.numbers.lockPhoneNumber(user.id, p.number);
      return ok(r.number, { fields: { number: r.number, lockeduntil: iso(r.lockedUntil), username: user.username } });
    },
  },
  {
    name: 'cli',
    params: ['anum'],
    level: 12,
    description: 'add a pin-less caller number (ANI) to the account: anum (or num); list=1 lists, del=1 deletes',
    run: async (ctx, p) => {
      const user = await actingOn(ctx, p, 'cli');
      const s = ctx.services.numbers;
      if (truthy(p.list)) return listAnswer('caller number', user, await s.listCli(user.id));
      const raw = p.anum ?? p.num;
      if (!raw) return fail('anum: the caller number to add (or list=1)', { legacyStatus: 421 });
      if (truthy(p.del)) {
        const n = await s.deleteCli(user.id, raw);
        return ok(`caller number ${n} removed from ${user.username}`, {
          fields: { number: n, username: user.username },
        });
      }
      const r = await s.addCli(user.id, raw);
      return ok(
        r.added
          ? `caller number ${r.number} added to ${user.username}`
          : `caller number ${r.number} is already on ${user.username}`,
        {
          fields: { number: r.number, username: user.username },
        },
      );
    },
  },
  {
    name: 'addcallbacknumber',
    params: ['anum'],
    level: 12,
    description: 'add a custom callback number (at most 10 per user): anum (or num); list=1 lists, del=1 deletes',
    run: async (ctx, p) => {
      const user = await actingOn(ctx, p, 'addcallbacknumber');
      const s = ctx.services.numbers;
      if (truthy(p.list)) return listAnswer('callback number', user, await s.listCallbackNumbers(user.id));
      const raw = p.anum ?? p.num;
      if (!raw) return fail('anum: the callback number to add (or list=1)', { legacyStatus: 421 });
      if (truthy(p.del)) {
        const n = await s.deleteCallbackNumber(user.id, raw);
        return ok(`callback number ${n} removed from ${user.username}`, {
          fields: { number: n, username: user.username },
        });
      }
      const n = await s.addCallbackNumber(user.id, raw);
      return ok(`callback number ${n} added to ${user.username}`, { fields: { number: n, username: user.username } });
    },
  },
  {
    name: 'callbackaccessnumber',
    params: [],
    level: 12,
    description: 'the number to call for callback (option callbackaccessnumber)',
    run: (ctx) => {
      const n = ctx.services.config.get('callbackaccessnumber');
      if (!n) return fail('no callback access number is configured (set callbackaccessnumber)');
      return ok(n, { fields: { callbackaccessnumber: n } });
    },
  },
  {
    name: 'callforward',
    params: ['anum', 'bnum', 'cnum'],
    level: 12,
    description:
      'call forward rules: anum unconditional, bnum on busy, cnum on no answer ' +
      "(a number or a username; '' or off clears); none given: show; admins: username=",
    run: async (ctx, p) => {
      const user = await actingOn(ctx, p, 'callforward');
      const s = ctx.services.numbers;
      const changes: Partial<ForwardSettings> = {};
      if (p.anum !== undefined) changes.always = p.anum;
      if (p.bnum !== undefined) changes.busy = p.bnum;
      if (p.cnum !== undefined) changes.noanswer = p.cnum;
      if (!Object.keys(changes).length) return forwardAnswer(user, await s.getForward(user.id), false);
      const f = await s.setForward(user.id, changes);
      ctx.services.log.info({ user: user.username, by: ctx.caller.user?.username, ...f }, 'call forward set');
      return forwardAnswer(user, f, true);
    },
  },
  {
    name: 'getconfroom',
    params: ['pin'],
    level: 12,
    description:
      "the caller's conference room number (allocated on first use, from confroomfirst); pin=DIGITS sets the " +
      'PIN callers must type before joining, pin=none removes it',
    run: async (ctx, p) => {
      const user = await actingOn(ctx, p, 'getconfroom');
      const r = await ctx.services.numbers.getConfRoom(user.id);
      const pin =
        p.pin !== undefined
          ? await ctx.services.numbers.setConfRoomPin(user.id, p.pin)
          : await ctx.services.numbers.confRoomPin(r.room);
      return ok(r.room, { fields: { room: r.room, username: user.username, pin } });
    },
  },
];
