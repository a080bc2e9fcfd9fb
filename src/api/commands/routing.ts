/** Routing commands: gateways (addgateway, delgateway, gateways) and routingtest. */
import type { CommandDef } from '../registry.js';

export const routingCommands: CommandDef[] = [];
