/** The sipp peers of the call-control tests: a UAS per scenario under test/callcontrol/scenarios. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toolPath } from '../helpers/tools.js';
import { startListening, type Listening } from '../helpers/processes.js';

export const SCEN = resolve(process.cwd(), 'test/callcontrol/scenarios');
export const SIPP = toolPath('sipp');

/**
 * A sipp UAS on a free port (or on `port`), resolved once it listens; `done` resolves with its exit code and output
 * (the tail of its error file first) when the one call of the scenario is over.
 */
export async function uas(work: string, scenario: string, port?: number): Promise<Listening> {
  const err = (p: number) => join(work, `${scenario}-${p}.err`);
  const l = await startListening(
    SIPP,
    (p) => [
      '-sf',
      join(SCEN, scenario),
      '-p',
      String(p),
      '-i',
      '127.0.0.1',
      '-m',
      '1',
      '-nostdin',
      '-timeout',
      '25s',
      '-timeout_error',
      '-trace_err',
      '-error_file',
      err(p),
    ],
    { cwd: work, port },
  );
  const done = l.done.then(({ code, out }) => {
    const f = err(l.port);
    if (existsSync(f)) out = readFileSync(f, 'utf8').slice(-2000) + '\n' + out.slice(-1000);
    return { code, out: out.slice(-3000) };
  });
  return { ...l, done };
}
