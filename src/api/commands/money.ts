/** Money commands: transfercredit, charge, addcredit, cccharge, PIN batches. */
import type { CommandDef } from '../registry.js';

export const moneyCommands: CommandDef[] = [];
