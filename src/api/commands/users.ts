/** Account commands: newuseru, changepwd, forgotpassword*, search, setfield/getfield, db. */
import type { CommandDef } from '../registry.js';

export const userCommands: CommandDef[] = [];
