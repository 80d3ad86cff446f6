// `plan`: the dry-run audit, the exact script a run would execute.
import type { Command } from 'commander';
import { addCommon, parse, phaseHelp, type Done, type Io } from './common.js';
import { sweepCommand } from './run.js';

const PLAN_EXIT_CODES = `
Exit codes: 0 the plan is printed (--json: wouldChange says whether a run would change the node),
1 a phase could not be planned, 2 bad usage or bad input, 3 refused (--cni naming a live CNI).
`;

export function planCommand(program: Command, io: Io, done: Done): void {
  addCommon(program.command('plan'))
    .description('dry-run audit: print the exact commands a run would execute, as a bash script; changes nothing')
    .option('--uncordon', 'include the uncordon step')
    .option('-y, --yes', 'accepted and ignored (a plan asks nothing), so that a script can swap run for plan')
    .addHelpText('after', phaseHelp() + PLAN_EXIT_CODES)
    .action(async (opts: Record<string, unknown>) => {
      done(await sweepCommand(io, parse(opts), true));
    });
}
