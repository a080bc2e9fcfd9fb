/** Control: servicerst (graceful restart through the service manager), sipreset/vsiprst, gwrst. */
import { ok } from '../types.js';
import { ApiError } from '../types.js';
import type { CommandDef } from '../registry.js';
import { pingGateway } from '../../sip/services/gwping.js';

export const controlCommands: CommandDef[] = [
  {
    name: 'servicerst',
    params: [],
    level: 4,
    description: 'restart the main service (drain calls, exit 75 for the service manager to start it again)',
    run: (ctx) => ok(ctx.services.control.restart()),
  },
  {
    name: 'sipreset',
    aliases: ['vsiprst'],
    params: [],
    level: 6,
    description: 'restart the SIP stack in-process (the API keeps answering; live calls are ended and billed)',
    run: async (ctx) => ok(await ctx.services.control.restartSip()),
  },
  {
    name: 'gwrst',
    params: [],
    level: 6,
    description:
      're-check gateways: an OPTIONS ping to each enabled SIP gateway, with its answer; registering trunks REGISTER ' +
      'again (their state in the registration column)',
    run: async (ctx) => {
      const s = ctx.services;
      if (!s.sip) throw new ApiError('gwrst needs the SIP stack: it is off (usesip=false)');
      const gws = (await s.routing.gateways()).filter((g) => g.enabled);
      if (!gws.length) return ok('no enabled gateways (add one with addgateway)');
      const stack = s.sip.stack;
      // trunks that register do it again now (this process registers the ones it holds the lease of)
      const trunks = new Map((await (s.trunks?.reregisterAll() ?? Promise.resolve([]))).map((t) => [t.name, t]));
      const pinged = await Promise.all(gws.map((g) => pingGateway(stack, g)));
      const rows = pinged.map((r) => {
        const t = trunks.get(r.gateway);
        return { ...r, registration: t ? `${t.status}${t.cause ? `: ${t.cause}` : ''}` : '' };
      });
      const up = rows.filter((r) => r.reachable).length;
      for (const r of rows)
        if (!r.reachable) s.log.warn({ gateway: r.gateway, target: r.target }, 'gateway not reachable');
      return ok(`${up} of ${rows.length} gateways answer`, {
        columns: ['gateway', 'target', 'reachable', 'status', 'reason', 'ms', 'registration'],
        rows: rows.map((r) => ({ ...r, reachable: r.reachable ? 'yes' : 'no', status: r.status ?? '' })),
      });
    },
  },
];
