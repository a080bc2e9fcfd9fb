/** Ban list commands: bannedlist, delbanned [ip|all]. */
import { ok, fail } from '../types.js';
import type { CommandDef } from '../registry.js';
import { isIP } from 'node:net';
import { normalizeIp } from '../../domain/security/ip.js';

export const securityCommands: CommandDef[] = [
  {
    name: 'bannedlist',
    params: [],
    level: 6,
    description: "list of banned ip's",
    run: (ctx) => {
      const now = Date.now();
      const rows = ctx.services.bans.list().map((b) => ({
        ip: b.ip,
        reason: b.reason,
        since: new Date(b.created_at).toISOString(),
        until: new Date(b.until).toISOString(),
        remaining_s: Math.ceil((b.until - now) / 1000),
      }));
      return ok(`${rows.length} banned`, { columns: ['ip', 'reason', 'since', 'until', 'remaining_s'], rows });
    },
  },
  {
    name: 'delbanned',
    params: ['ip'],
    level: 6,
    description: 'remove an ip from the banned list (ip, or all)',
    run: async (ctx, p) => {
      const ip = (p.ip ?? (p.all !== undefined ? 'all' : '')).trim().toLowerCase();
      if (!ip) return fail('delbanned needs ip=ADDRESS or ip=all');
      if (ip !== 'all' && !isIP(normalizeIp(ip))) return fail(`"${ip}" is not an IP address (or "all")`);
      const n = await ctx.services.bans.remove(ip);
      return ok(
        ip === 'all'
          ? `${n} ban(s) lifted`
          : n
            ? `ban on ${normalizeIp(ip)} lifted`
            : `${normalizeIp(ip)} was not banned`,
        { fields: { removed: n } },
      );
    },
  },
];
