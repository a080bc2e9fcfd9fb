/** Rating commands: rating, callrating, gencdr. */
import type { CommandDef } from '../registry.js';

export const ratingCommands: CommandDef[] = [];
