// Plans or runs cni-sweep's phases on the real host with a profile read from a JSON file (the CLI
// knows only its built-in profiles): the same sweep() and RealHost the CLI uses, for a CNI that is
// not built in. Run inside the test's network namespace:
//   vite-node test/helpers/profile-sweep.ts -- plan|run ROOT PROFILE.json PHASES BACKUP_DIR
// Prints {"report": ..., "script": "<the plan as a bash script>"} on stdout.
import fs from 'node:fs';
import { silentReporter } from '../../src/events.js';
import { RealHost } from '../../src/host/real.js';
import { PHASES } from '../../src/phases/index.js';
import { renderScript } from '../../src/plan.js';
import { ProfileSchema } from '../../src/profiles/schema.js';
import { sweep } from '../../src/run.js';

const [mode, root, profileFile, phases, backupDir] = process.argv.slice(2).filter((a) => a !== '--');
if (!mode || !root || !profileFile || !phases || !backupDir) throw new Error('usage: plan|run ROOT PROFILE.json PHASES BACKUP_DIR');
const profile = ProfileSchema.parse(JSON.parse(fs.readFileSync(profileFile, 'utf8')));
const r = await sweep({
  host: new RealHost(root),
  profiles: [profile],
  phases: PHASES,
  selected: new Set(phases.split(',')),
  reporter: silentReporter,
  opts: {
    node: 'node-1',
    podCidrs: [],
    uncordon: false,
    dryRun: mode === 'plan',
    drainTimeoutSec: 60,
    backupDir,
    now: new Date(),
    version: '0.0.0-test',
  },
});
process.stdout.write(JSON.stringify({ report: r.report, script: renderScript(r.plans, r.report, '0.0.0-test') }) + '\n');
