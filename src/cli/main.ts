/** The voxswitch command line (commander): thin, it parses and calls a service. */
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { VERSION } from '../server.js';
import { parseSetArgs, ConfigStore } from '../config/store.js';
import { makeSelfSigned } from './gencert.js';
import { numbersCommand } from './numbers.js';
import { pinsCommand } from './pins.js';
import { tariffsCommand } from './tariffs.js';
import { serve, type ServeArgs } from './serve.js';
import { backupCommand, restoreCommand } from './backup.js';
import { maskedOptions } from '../config/mask.js';

const collect = (v: string, prev: string[]) => [...prev, v];
let serving = false;
// A reader that goes away (`voxswitch config | head`) ends a command quietly; a running server ignores it.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  if (!serving) process.exit(0);
});
const program = new Command().name('voxswitch').version(VERSION).description('voxswitch softswitch');

program
  .command('serve')
  .description('run the server')
  .option('--data-dir <dir>', 'database, logs and files', './data')
  .option('--set <name=value>', 'override a global config option for this run (repeatable)', collect, [])
  .option('--workers <n>', 'processes on the same ports (0: one per core with redisurl and PostgreSQL; 1: one)')
  .action((o: ServeArgs) => serve(o, () => (serving = true)));

program
  .command('gencert')
  .description(
    'make a self-signed certificate and key for testing TLS (written to the data dir as tls/cert.pem, tls/key.pem)',
  )
  .option('--data-dir <dir>', 'data dir', './data')
  .option('--cn <name>', 'common name', 'localhost')
  .action(async (o: { dataDir: string; cn: string }) => {
    const dir = join(resolve(o.dataDir), 'tls');
    mkdirSync(dir, { recursive: true });
    const { cert, key } = await makeSelfSigned(o.cn);
    writeFileSync(join(dir, 'cert.pem'), cert);
    writeFileSync(join(dir, 'key.pem'), key, { mode: 0o600 });
    process.stdout.write(`wrote ${join(dir, 'cert.pem')} and ${join(dir, 'key.pem')}; enable with --set usetls=true\n`);
  });

program
  .command('config')
  .description('validate the configuration of a data dir and print the effective options')
  .option('--data-dir <dir>', 'data dir', './data')
  .option('--set <name=value>', 'override (repeatable)', collect, [])
  .action((o: { dataDir: string; set: string[] }) => {
    try {
      const c = new ConfigStore(resolve(o.dataDir), parseSetArgs(o.set));
      for (const [k, shown] of maskedOptions(c.options)) process.stdout.write(`${k}=${shown}\n`);
    } catch (e) {
      process.stderr.write(`voxswitch: ${(e as Error).message}\n`);
      process.exit(1);
    }
  });

program.addCommand(numbersCommand());
program.addCommand(pinsCommand());
program.addCommand(tariffsCommand());
program.addCommand(backupCommand());
program.addCommand(restoreCommand());

await program.parseAsync(process.argv);
