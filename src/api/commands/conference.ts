/** Conference room commands: confrooms (admins), confparticipants (a room's owner or admins). */
import type { CommandContext } from '../context.js';
import type { CommandDef } from '../registry.js';
import { ok, fail, ApiError } from '../types.js';
import { isAdminType } from '../../domain/accounts/types.js';
import type { ParticipantView } from '../../sip/conference/service.js';

const COLUMNS = ['room', 'callid', 'user', 'joined', 'codec', 'port', 'packetsin', 'packetsout'];

function conference(ctx: CommandContext) {
  const c = ctx.services.calls?.conference;
  if (!c) throw new ApiError('conference rooms need the SIP server (option usesip=true)', 503);
  return c;
}

function rowsOf(list: ParticipantView[]) {
  return list.map((p) => ({
    room: p.room,
    callid: p.callid,
    user: p.user,
    joined: p.joined,
    codec: p.codec,
    port: p.port,
    packetsin: p.packetsIn,
    packetsout: p.packetsOut,
  }));
}

function isAdmin(ctx: CommandContext): boolean {
  const u = ctx.caller.user;
  if (u) return isAdminType(u.type);
  return ctx.caller.via === 'console' || ctx.caller.via === 'trusted-ip';
}

export const conferenceCommands: CommandDef[] = [
  {
    name: 'confrooms',
    params: [],
    level: 6,
    description:
      'Every active conference room of this process with its participants (room, callid, user, joined, codec, ' +
      'local RTP port, packets in/out); disccall ends a participant by its callid.',
    async run(ctx) {
      const list = await conference(ctx).participants();
      const rooms = [...new Set(list.map((p) => p.room))];
      const text = rooms.map((r) => `${r}: ${list.filter((p) => p.room === r).length}`).join('\r\n');
      return ok(rooms.length ? text : 'no active conference room', {
        fields: { rooms: rooms.length, participants: list.length },
        columns: COLUMNS,
        rows: rowsOf(list),
      });
    },
  },
  {
    name: 'confparticipants',
    params: ['room'],
    level: 12,
    description:
      "A conference room's live participants (user, joined, codec, local RTP port, packets in/out): the caller's own " +
      'room by default; another room for its owner or admins.',
    async run(ctx, p) {
      const admin = isAdmin(ctx);
      const user = ctx.caller.user;
      if (!admin && !user) return fail('confparticipants needs an authenticated user (authid with authpwd)');
      let room = String(p.room ?? '').trim();
      const owner = room ? await ctx.services.numbers.confRoomOwner(room) : undefined;
      if (room && owner === undefined) return fail(`${room.slice(0, 32)} is not a conference room`);
      if (!room) {
        if (!user) return fail('room is missing (a conference room number, see confrooms)');
        room = (await ctx.services.numbers.getConfRoom(user.id)).room;
      } else if (!admin && owner !== user!.id) {
        return fail(`confparticipants: room ${room} is not yours`);
      }
      const list = await conference(ctx).participants(room);
      return ok(`room ${room}: ${list.length} participant${list.length === 1 ? '' : 's'}`, {
        fields: { room, participants: list.length },
        columns: COLUMNS,
        rows: rowsOf(list),
      });
    },
  },
];
