/**
 * Every other API of the document, declared with its parameters and default levels. Until the part of
 * voxswitch that does its work lands, each answers ERROR saying why (never a fake OK).
 */
import type { CommandDef, Level } from '../registry.js';

const NEVER = {
  windows: 'is a Windows/host administration action that voxswitch does not perform: use the operating system tools',
  h323: 'belongs to the H.323 and GSM-gateway modules of the vendor, which voxswitch does not have',
  shell: 'would run shell commands; shell execution is disabled in voxswitch by design',
  client: "manages the vendor's client services (ccamp/vclient), which voxswitch does not have",
};

type Row = [name: string, level: Level, params: string, description: string, why: string, extra?: Partial<CommandDef>];

const rows: Row[] = [
  // user commands
  // admin commands
  ['cmd', 4, 'txt', 'exec shell command', NEVER.shell],
  ['gk', 6, '', 'connect to h323 gatekeeper module', NEVER.h323],
  ['client', 6, '', 'switch to the requested client', NEVER.client],
  ['setip', 4, 'cardname,ip,mask,gateway,gwmetric', 'set new ip', NEVER.windows],
  ['timezoneset', 4, 'timezone', 'set timezone', NEVER.windows],
  ['pcrst', 4, '', 'restart the PC', NEVER.windows],
  ['reindexncache', 6, '', 'reindex ccampclient', NEVER.client],
  ['calcncache', 6, '', 'recalc cache size and mode', NEVER.client],
  ['clearnccache', 6, 'operatorid', 'clear next client cache', NEVER.client],
  ['upgradeall', 6, 'mode', 'selfupgrade all clients', NEVER.client],
  ['predectivet', 6, 'action', 'start/stop predictive dialer thread', NEVER.h323],
  ['stopcanner', 6, '', 'stop number scanner threads', NEVER.h323],
  ['checkscanner', 6, '', 'check number scanner threads', NEVER.h323],
  [
    'unittest',
    4,
    'testtype,threads,testtime,parameter',
    'start unit tests',
    'is not offered on a running server: run "npm test" from the source tree',
  ],
  ['toclient', 6, 'client,message', 'send message to client service', NEVER.client],
  ['togw', 6, 'client,message', 'send message to gw', NEVER.h323],
  ['call', 6, 'origsimid,telnum,duration', 'sim call each other', NEVER.h323],
  ['toip', 6, 'sims,simid,credit,callnum,dialnum', 'send message to the specified ip', NEVER.h323],
  ['at', 6, 'gwname,line,atcommand', 'send AT command to a GSM engine', NEVER.h323],
  ['capcheck', 6, 'direction', 'check free capacity', NEVER.h323],
  ['parsegsmcdr', 6, 'file', 'reparse cdr from log file', NEVER.h323],
  [
    'willstop',
    6,
    '',
    'no more credit check',
    'is not offered: every call is authorised against credit and cut at its maxduration',
  ],
];

/** Reasons that are already worded as the rest of the sentence after the command name. */
const SELF_WORDED = ['is ', 'would ', 'belongs', 'manages', 'needs'];

export const catalogCommands: CommandDef[] = rows.map(([name, level, params, description, why, extra]) => ({
  name,
  level,
  params: params ? params.split(',') : [],
  description,
  unavailable: `${name} ${SELF_WORDED.some((w) => why.startsWith(w)) ? why : `is not available yet: it ${why}`}`,
  ...extra,
}));
