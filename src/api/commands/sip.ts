/** SIP-state commands: status, verifyuser, presence_get, presence_set, sendim, sendamsg, reguser, endpoints. */
import { ok, fail, ApiError } from '../types.js';
import type { CommandDef } from '../registry.js';
import type { CommandContext } from '../context.js';
import type { Services } from '../../services.js';
import type { SipServer } from '../../sip/server.js';
import { isAdminType, UserType } from '../../domain/accounts/types.js';

const DISABLED = 'the SIP stack is disabled (usesip=false)';
const MAX_TEXT = 4096;
const MAX_LIST = 500;

function sipOf(ctx: CommandContext): SipServer {
  const sip = (ctx.services as Services & { sip?: SipServer }).sip;
  if (!sip) throw new ApiError(DISABLED, 412);
  return sip;
}

function callerName(ctx: CommandContext, api: string): { id: number; username: string } {
  const u = ctx.caller.user;
  if (!u) throw new ApiError(`${api} needs an authenticated user (authid/authpwd)`, 403);
  return { id: u.id, username: u.username };
}

/** A user list: comma/semicolon/space separated; "user@domain" → "user". */
function userList(v: string | undefined): string[] {
  const out: string[] = [];
  for (const raw of (v ?? '').split(/[,;\s]+/)) {
    const s = raw.trim();
    if (!s) continue;
    const at = s.indexOf('@');
    const u = (at > 0 ? s.slice(0, at) : s).replace(/^sips?:/i, '');
    // a name with ':' (or a control character) would read as another user:status pair in the answer
    if (u && !/[\u0000-\u001f\u007f:]/.test(u) && !out.includes(u)) out.push(u);
  }
  return out;
}

/** Presence strings travel as `user:status,…`: separators and control characters are replaced. */
function cleanStatus(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f,:]+/g, ' ').trim();
}

function cleanText(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '');
}

async function sendTo(ctx: CommandContext, sip: SipServer, from: string, targets: string[], txt: string) {
  const rows: Array<{ user: string; result: string }> = [];
  const counts = { delivered: 0, queued: 0, stored: 0, unknown: 0 };
  const body = Buffer.from(txt, 'utf8');
  for (const t of targets) {
    if ((await sip.status(t)) === 0) {
      counts.unknown++;
      rows.push({ user: t, result: 'no such user' });
      continue;
    }
    try {
      const r = await sip.deliverIm(from, t, body, 'text/plain;charset=utf-8', 3000);
      counts[r]++;
      rows.push({ user: t, result: r === 'stored' ? 'stored (offline)' : r });
    } catch (e) {
      rows.push({ user: t, result: `failed: ${(e as Error).message}` });
      ctx.services.log.warn({ to: t, err: (e as Error).message }, 'IM delivery failed');
    }
  }
  return { rows, counts };
}

export const sipCommands: CommandDef[] = [
  {
    name: 'status',
    params: ['username'],
    fallbacks: { username: ['userusername'] },
    level: 12,
    description:
      'self online status: 0 does not exist, 1 offline, 2 online, 3 calling, 4 speaking; admins (and a public ' +
      'status, req_user=14) may name another user in username',
    run: async (ctx, p) => {
      const sip = sipOf(ctx);
      const other = (p.username ?? '').trim();
      const u = ctx.caller.user;
      if (other && other !== u?.username) {
        // the document's status is the caller's own; another user's status is verifyuser's answer
        if (u && !isAdminType(u.type))
          return fail(
            `status tells your own status; ask verifyuser&userusername=${other.slice(0, 64)} for another user`,
          );
        const n = await sip.status(other);
        return ok(String(n), { fields: { status: n, username: other } });
      }
      const me = callerName(ctx, 'status');
      const n = await sip.status(me.username);
      return ok(String(n), { fields: { status: n, username: me.username } });
    },
  },
  {
    name: 'verifyuser',
    params: ['userusername'],
    fallbacks: { userusername: ['userlist', 'username', 'usr'] },
    level: 12,
    description:
      'status of this user: 0 does not exist, 1 offline, 2 online, 3 calling, 4 speaking (userusername, or ' +
      'userlist; several users answer user:status,…)',
    run: async (ctx, p) => {
      const sip = sipOf(ctx);
      const names = userList(p.userusername);
      if (!names.length) return fail('verifyuser needs userusername=NAME (or userlist=NAME1,NAME2)');
      if (names.length > MAX_LIST)
        return fail(`verifyuser: at most ${MAX_LIST} users per request (got ${names.length})`);
      if (names.length === 1) {
        const n = await sip.status(names[0]!);
        return ok(String(n), { fields: { status: n, username: names[0]! } });
      }
      // several users: `user:status,…` before the OK line, like presence_get's list (fields carry the codes)
      const fields: Record<string, number> = {};
      for (const n of names) fields[n] = await sip.status(n);
      return ok(
        Object.entries(fields)
          .map(([n, c]) => `${n}:${c}`)
          .join(','),
        { fields },
      );
    },
  },
  {
    name: 'presence_get',
    params: ['userusername', 'ptype', 'domain'],
    fallbacks: { userusername: ['userlist', 'username'] },
    level: 12,
    description: 'presence status of one or more users (userusername or userlist: comma separated)',
    run: async (ctx, p) => {
      const sip = sipOf(ctx);
      const names = userList(p.userusername);
      if (!names.length) return fail('presence_get needs userusername=NAME or userlist=NAME1,NAME2', { oneLine: true });
      if (names.length > MAX_LIST)
        return fail(`presence_get: at most ${MAX_LIST} users per request (got ${names.length})`, { oneLine: true });
      const parts: string[] = [];
      const rows: Array<{ user: string; status: string; code: number }> = [];
      for (const n of names) {
        const st = cleanStatus(await sip.presenceOf(n)) || 'unknown';
        parts.push(`${n}:${st}`);
        rows.push({ user: n, status: st, code: await sip.status(n) });
      }
      return ok(`puserlist: ${parts.join(',')}`, { rows, columns: ['user', 'status', 'code'], oneLine: true });
    },
  },
  {
    name: 'presence_set',
    params: ['pstatus', 'ptype'],
    level: 12,
    description: 'set presence status (the answer carries offline messages: XOFFMESSAGE:fromuser:text…XOFFMESSAGE:)',
    run: async (ctx, p) => {
      const sip = sipOf(ctx);
      const me = callerName(ctx, 'presence_set');
      const status = cleanStatus(p.pstatus ?? p.status ?? '');
      if (!status) return fail('presence_set needs pstatus=STATUS (for example Online, Away, DND)', { oneLine: true });
      if (status.length > 256)
        return fail(`pstatus is too long (${status.length} characters, at most 256)`, { oneLine: true });
      await sip.setPresence(me.id, me.username, status);
      const msgs = await sip.ims.takeAll(me.username);
      let text = `presence set to ${status}`;
      if (msgs.length)
        text +=
          ' ' + msgs.map((m) => `XOFFMESSAGE:${m.fromuser}:${cleanText(m.body).trimEnd()}`).join('') + 'XOFFMESSAGE:';
      return ok(text, { fields: { status, offline_messages: msgs.length }, oneLine: true });
    },
  },
  {
    name: 'sendim',
    params: ['bnum', 'txt'],
    level: 12,
    description: 'send a chat message to one user or a list (bnum or buserlist, txt)',
    run: async (ctx, p) => {
      const sip = sipOf(ctx);
      const me = callerName(ctx, 'sendim');
      const targets = userList(p.bnum ?? p.buserlist);
      const txt = p.txt ?? '';
      if (!targets.length) return fail('sendim needs bnum=USER (or buserlist=USER1,USER2)');
      if (targets.length > MAX_LIST) return fail(`sendim: at most ${MAX_LIST} recipients (got ${targets.length})`);
      if (!txt.trim()) return fail('sendim needs txt=MESSAGE (empty message)');
      if (Buffer.byteLength(txt) > MAX_TEXT)
        return fail(`txt is too long (${Buffer.byteLength(txt)} bytes, at most ${MAX_TEXT})`);
      const { rows, counts } = await sendTo(ctx, sip, me.username, targets, txt);
      if (counts.unknown === targets.length)
        return fail(`no such user: ${targets.join(',')}`, { legacyStatus: 404, rows });
      return ok(
        `message sent: ${counts.delivered} delivered, ${counts.queued} in progress, ${counts.stored} stored for ` +
          `offline users, ${counts.unknown} unknown`,
        {
          fields: counts,
          columns: ['user', 'result'],
          rows,
        },
      );
    },
  },
  {
    name: 'sendamsg',
    params: ['agentid', 'message'],
    level: 6,
    description: 'send a message to an agent (support user) or to all agents (agentid=all)',
    run: async (ctx, p) => {
      const sip = sipOf(ctx);
      const me = callerName(ctx, 'sendamsg');
      const agent = (p.agentid ?? '').trim();
      const txt = p.message ?? p.txt ?? '';
      if (!agent) return fail('sendamsg needs agentid=USERNAME or agentid=all');
      if (!txt.trim()) return fail('sendamsg needs message=TEXT (empty message)');
      if (Buffer.byteLength(txt) > MAX_TEXT)
        return fail(`message is too long (${Buffer.byteLength(txt)} bytes, at most ${MAX_TEXT})`);
      let targets: string[];
      const db = ctx.services.storage.db;
      if (agent.toLowerCase() === 'all') {
        const rows = await db
          .selectFrom('tb_users')
          .select('username')
          .where('type', '=', UserType.support)
          .where('enabled', '=', 1)
          .orderBy('id')
          .execute();
        targets = rows.map((r) => r.username);
        if (!targets.length) return fail('there are no agents (users of type support)');
      } else {
        let r = await db
          .selectFrom('tb_users')
          .select(['username', 'type'])
          .where('username', '=', agent)
          .executeTakeFirst();
        if (!r && /^\d{1,9}$/.test(agent))
          r = await db
            .selectFrom('tb_users')
            .select(['username', 'type'])
            .where('id', '=', Number(agent))
            .executeTakeFirst();
        if (!r) return fail(`agent "${agent}" not found`, { legacyStatus: 404 });
        if (Number(r.type) !== UserType.support) return fail(`"${r.username}" is not an agent (user type support)`);
        targets = [r.username];
      }
      const { rows, counts } = await sendTo(ctx, sip, me.username, targets, txt);
      return ok(
        `message sent to ${targets.length} agent(s): ${counts.delivered} delivered, ${counts.queued} in progress, ` +
          `${counts.stored} stored for offline agents`,
        {
          fields: { ...counts, agents: targets.length },
          columns: ['user', 'result'],
          rows,
        },
      );
    },
  },
  {
    name: 'reguser',
    params: ['usr'],
    level: 6,
    description: 'registered devices of a user (usr), or of every user',
    run: (ctx, p) => {
      const sip = sipOf(ctx);
      const usr = (p.usr ?? p.username ?? '').trim();
      const rows = sip.endpoints(usr || undefined);
      const text = usr
        ? rows.length
          ? `${usr}: ${rows.length} registration(s)`
          : `${usr} is not registered`
        : `${new Set(rows.map((r) => r.user)).size} user(s), ${rows.length} registration(s)`;
      return ok(text, {
        fields: { registrations: rows.length },
        columns: ['user', 'contact', 'transport', 'source', 'user_agent', 'expires'],
        rows,
      });
    },
  },
  {
    name: 'endpoints',
    params: [],
    level: 6,
    description: 'registered SIP endpoints: user, contact, transport, source, user agent, expires',
    run: (ctx) => {
      const sip = sipOf(ctx);
      const rows = sip.endpoints();
      return ok(`${rows.length} endpoint(s)`, {
        fields: { endpoints: rows.length },
        columns: ['user', 'contact', 'transport', 'source', 'user_agent', 'expires'],
        rows,
      });
    },
  },
];
