/** SIP-state commands: status, verifyuser, presence_get, presence_set, sendim, sendamsg, reguser, endpoints. */
import type { CommandDef } from '../registry.js';

export const sipCommands: CommandDef[] = [];
