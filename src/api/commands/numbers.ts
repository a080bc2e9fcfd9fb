/** Numbers and features: getphonenumber, lockphonenumber, cli, addcallbacknumber, callbackaccessnumber, callforward, getconfroom. */
import type { CommandDef } from '../registry.js';

export const numberCommands: CommandDef[] = [];
