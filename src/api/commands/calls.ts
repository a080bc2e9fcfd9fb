/** Live call commands: disccall, quickstat, voicehere. */
import type { CommandDef } from '../registry.js';
import { ok, fail, ApiError } from '../types.js';
import { nodeFields, nodeLine } from '../nodestats.js';

const COLUMNS = ['callid', 'userid', 'caller', 'callee', 'route', 'state', 'duration', 'maxduration'];

export const callCommands: CommandDef[] = [
  {
    name: 'disccall',
    params: ['dbcallid'],
    description:
      'Disconnects a live call (BYE to both legs); the call is billed up to now. dbcallid: the call id shown by ' +
      'quickstat/info (callid, or callid/leg for one leg of a callback); a call held by another process or node is ' +
      'ended by its owner, asked over the bus (ERROR naming the node when it does not confirm within 3 s).',
    level: 6,
    async run(ctx, p) {
      const id = String(p.dbcallid ?? p.callid ?? '').trim();
      if (!id) return fail('dbcallid is missing (the id of a live call, see quickstat)');
      const r = await ctx.services.sharedCalls.disconnect(id, 'disconnected by API (disccall)');
      if (!r.ok && r.reason === 'unknown') return fail(`no live call with id ${id}`);
      if (!r.ok)
        return fail(
          `call ${id} is held by node ${r.node}, which did not confirm the disconnection in time ` +
            '(is it running and connected to Redis?)',
        );
      const fields: Record<string, string | number> = { callid: id, legs: r.legs };
      if (ctx.services.sharedCalls.shared) fields.node = r.node;
      return ok(`call ${id} disconnected`, { fields });
    },
  },
  {
    name: 'voicehere',
    params: ['dbcallid', 'listener'],
    description:
      'Real-time call listening: voxswitch calls the listener (a SIP user with a registered phone; default the ' +
      "admin's own account) and, once it answers, sends it both directions of the live call dbcallid (see " +
      'quickstat) mixed into one G.711 stream (PCMU or PCMA, as its answer chooses); the parties hear nothing of ' +
      'it. The listener hanging up stops the listening, the call ending hangs the listener up. Only calls whose ' +
      'media pass through the RTP relay of this process can be listened to (rtprelay=always relays every call). ' +
      'Answers once the listener answered (it may ring 30 s).',
    level: 6,
    async run(ctx, p) {
      const id = String(p.dbcallid ?? p.callid ?? '').trim();
      if (!id) return fail('dbcallid is missing (the id of a live call, see quickstat)');
      const listener = String(p.listener ?? '').trim() || ctx.caller.user?.username || '';
      if (!listener) return fail('listener is missing (the SIP user who is called to listen)');
      const monitor = ctx.services.calls?.monitor;
      if (!monitor) throw new ApiError('call listening needs the SIP server (option usesip=true)', 503);
      const v = await monitor.listen(id, listener);
      return ok(`listening to call ${id} on ${listener}`, {
        fields: { callid: id, listener, listenerid: v.id, codec: v.codec, port: v.port },
      });
    },
  },
  {
    name: 'quickstat',
    params: [],
    description:
      'Live call counts: live calls, connected calls, attempts and answered calls since start, ASR (%) and ACD (s), ' +
      'the list of live calls of every process and node (column node, for named nodes); the counters of this node, ' +
      'of every live node and the totals of the switch.',
    level: 6,
    async run(ctx) {
      const live = ctx.services.liveCalls;
      const s = live.stats();
      const now = Date.now();
      const shared = ctx.services.sharedCalls;
      // every process's calls from tb_livecalls (a named node), marked with the node that holds them
      const rows = (await shared.list()).map((c) => ({
        callid: c.key,
        ...(shared.shared ? { node: c.node } : {}),
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
        columns: shared.shared ? [...COLUMNS.slice(0, 1), 'node', ...COLUMNS.slice(1)] : COLUMNS,
        rows,
      });
    },
  },
];
