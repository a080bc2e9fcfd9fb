/** Live call commands: disccall, quickstat. */
import type { CommandDef } from '../registry.js';
import { ok, fail } from '../types.js';
import { nodeFields, nodeLine } from '../nodestats.js';

export const callCommands: CommandDef[] = [
  {
    name: 'disccall',
    params: ['dbcallid'],
    description:
      'Disconnects a live call (BYE to both legs); the call is billed up to now. dbcallid: the call id shown by ' +
      'quickstat/info (callid, or callid/leg for one leg of a callback).',
    level: 6,
    async run(ctx, p) {
      const id = String(p.dbcallid ?? p.callid ?? '').trim();
      if (!id) return fail('dbcallid is missing (the id of a live call, see quickstat)');
      const live = ctx.services.liveCalls;
      const calls = live.find(id);
      if (!calls.length) return fail(`no live call with id ${id}`);
      live.hangup(id, 'disconnected by API (disccall)');
      return ok(`call ${id} disconnected`, { fields: { callid: id, legs: calls.length } });
    },
  },
  {
    name: 'quickstat',
    params: [],
    description:
      'Live call counts: live calls, connected calls, attempts and answered calls since start, ASR (%) and ACD (s), ' +
      'the list of live calls; the counters of this node, of every live node and the totals of the switch.',
    level: 6,
    async run(ctx) {
      const live = ctx.services.liveCalls;
      const s = live.stats();
      const now = Date.now();
      const rows = live.list().map((c) => ({
        callid: c.key,
        userid: c.userId,
        caller: c.caller,
        callee: c.callee,
        route: c.route,
        state: c.state,
        duration: c.connectAt === null ? 0 : Math.max(0, Math.floor((now - c.connectAt) / 1000)),
        maxduration: c.maxduration,
      }));
      const fields: Record<string, string | number> = {
        livecalls: s.live,
        connected: s.connected,
        attempted: s.attempted,
        answered: s.answered,
        asr: s.asr,
        acd: s.acd,
      };
      let text =
        `livecalls=${s.live} connected=${s.connected} attempted=${s.attempted} answered=${s.answered} asr=${s.asr} ` +
        `acd=${s.acd}`;
      const view = await ctx.services.nodeStats?.view();
      if (view) {
        const t = view.totals;
        Object.assign(fields, nodeFields(view));
        text +=
          `\r\nnode=${view.self.id} nodes=${t.nodes} total_livecalls=${t.liveCalls} ` +
          `total_registrations=${t.registrations} total_calls_per_s=${t.callsPerSecond}` +
          ` total_api_requests=${t.apiRequests} total_overload_refused=${t.overloadRefused}`;
        for (const n of view.nodes) {
          fields[`node.${n.id}`] = nodeLine(n, now);
          text += `\r\nnode.${n.id}: ${nodeLine(n, now)}`;
        }
        if (view.error) text += `\r\n${view.error}`;
      }
      return ok(text, {
        fields,
        columns: ['callid', 'userid', 'caller', 'callee', 'route', 'state', 'duration', 'maxduration'],
        rows,
      });
    },
  },
];
