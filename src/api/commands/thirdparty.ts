/** Third-party call control: callback, p2p. */
import type { CommandDef } from '../registry.js';

export const thirdPartyCommands: CommandDef[] = [];
