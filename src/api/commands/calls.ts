/** Live call commands: disccall, quickstat. */
import type { CommandDef } from '../registry.js';

export const callCommands: CommandDef[] = [];
