/** All command declarations, collected into the registry: the modules that do the work, then the catalog of
 * every remaining API of the document, declared as not available (with the reason). */
import { Registry } from '../registry.js';
import { systemCommands } from './system.js';
import { apiRuleCommands } from './apirules.js';
import { securityCommands } from './security.js';
import { accountCommands } from './accounts.js';
import { signupCommands } from './signup.js';
import { passwordCommands } from './passwords.js';
import { searchCommands } from './search.js';
import { fieldCommands } from './fields.js';
import { dbCommands } from './db.js';
import { moneyCommands } from './money.js';
import { ratingCommands } from './rating.js';
import { numberCommands } from './numbers.js';
import { sipCommands } from './sip.js';
import { routingCommands } from './routing.js';
import { callCommands } from './calls.js';
import { callControlCommands } from './callcontrol.js';
import { smsCommands } from './sms.js';
import { mailCommands } from './mail.js';
import { faxCommands } from './fax.js';
import { webhookCommands } from './webhooks.js';
import { opsCommands } from './ops.js';
import { logCommands, showcfgCommand } from './logs.js';
import { fileCommands } from './files.js';
import { settingsCommands } from './settings.js';
import { introspectCommands } from './introspect.js';
import { controlCommands } from './control.js';
import { conferenceCommands } from './conference.js';
import { catalogCommands } from './catalog.js';

export function buildRegistry(): Registry {
  const r = new Registry().add(
    ...systemCommands,
    ...apiRuleCommands,
    ...securityCommands,
    ...accountCommands,
    ...signupCommands,
    ...passwordCommands,
    ...searchCommands,
    ...fieldCommands,
    ...dbCommands,
    ...moneyCommands,
    ...ratingCommands,
    ...numberCommands,
    ...sipCommands,
    ...routingCommands,
    ...callCommands,
    ...callControlCommands,
    ...smsCommands,
    ...mailCommands,
    ...faxCommands,
    ...webhookCommands,
    ...opsCommands,
    ...logCommands,
    showcfgCommand,
    ...fileCommands,
    ...settingsCommands,
    ...introspectCommands,
    ...controlCommands,
    ...conferenceCommands,
  );
  // the catalog declares only names no module implements: the registry refuses a name declared twice
  return r.add(...catalogCommands);
}
