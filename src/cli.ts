// Command-line wiring only: each command lives in src/commands/<command>.ts; here the program is
// put together, and errors are mapped to exit codes.
import { Command, CommanderError } from 'commander';
import { CniSweepError, UsageError, exitCodeFor } from './errors.js';
import { VERSION, phaseHelp, type Io } from './commands/common.js';
import { planCommand } from './commands/plan.js';
import { runCommand } from './commands/run.js';
import { doctorCommand } from './commands/doctor.js';
import { restoreCommand } from './commands/restore.js';
import { backupsCommand } from './commands/backups.js';
import { profilesCommand } from './commands/profiles.js';
import { versionCommand } from './commands/version.js';
import { completionCommand, visible } from './commands/completion.js';
import { commentLine } from './util/shell.js';

export { VERSION, type Io } from './commands/common.js';

/** The commands, in the order --help lists them. */
const COMMANDS = [
  planCommand,
  runCommand,
  doctorCommand,
  restoreCommand,
  backupsCommand,
  profilesCommand,
  versionCommand,
  completionCommand,
];

export async function main(argv: string[], io: Io): Promise<number> {
  let code = 0;
  const program = new Command('cni-sweep')
    .description('Remove the node-side state a Kubernetes pod network (CNI) leaves behind, safely and in order.')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: () => {} })
    .addHelpText('after', phaseHelp() + '\nExit codes: 0 success, 1 a phase failed, 2 bad usage or input, 3 refused.\n');

  for (const register of COMMANDS)
    register(program, io, (c) => {
      code = c;
    });

  const verbose = argv.includes('--verbose');
  try {
    // Options before (or without) a command: commander would call the first one "unknown".
    const first = argv.find((a) => a !== '--verbose');
    const topLevel = ['-h', '--help', '-V', '--version', 'help'];
    // A bare `cni-sweep` asks what it can do, as `kubectl` and `gh` answer: the help, exit 0.
    if (first === undefined) {
      program.outputHelp();
      return 0;
    }
    if (first.startsWith('-') && !topLevel.includes(first))
      throw new UsageError(
        `no command given before ${first}: options come after the command`,
        `commands: ${visible(program)
          .map((c) => c.name())
          .join(', ')}; see cni-sweep --help`,
      );
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    // One line each, whatever a node's file or name put in the message (a newline, a terminal escape).
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // `cni-sweep help [command]` exits 0; help shown because something was missing is bad usage.
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      io.stderr.write(`cni-sweep: error: ${commentLine(err.message.replace(/^error: /, ''))}\n  hint: see cni-sweep --help\n`);
      return 2;
    }
    if (err instanceof CniSweepError) {
      io.stderr.write(`cni-sweep: error: ${commentLine(err.message)}\n${err.hint ? `  hint: ${commentLine(err.hint)}\n` : ''}`);
      if (verbose) io.stderr.write(`${err.stack}\n`);
      return exitCodeFor(err);
    }
    const e = err as Error;
    io.stderr.write(
      `cni-sweep: error: ${commentLine(e?.message ?? String(err))}\n${verbose ? `${e?.stack}\n` : '  hint: rerun with --verbose for details\n'}`,
    );
    return 1;
  }
}
