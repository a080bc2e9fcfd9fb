/** All command declarations, collected into the registry. */
import { Registry } from '../registry.js';
import { systemCommands } from './system.js';
import { securityCommands } from './security.js';
import { accountCommands } from './accounts.js';
import { catalogCommands } from './catalog.js';

export function buildRegistry(): Registry {
  return new Registry().add(...systemCommands, ...securityCommands, ...accountCommands, ...catalogCommands);
}
