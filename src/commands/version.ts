// `version`: the version of cni-sweep and of its JSON report.
import type { Command } from 'commander';
import { REPORT_SCHEMA_VERSION } from '../events.js';
import { VERSION, type Done, type Io } from './common.js';

export function versionCommand(program: Command, io: Io, done: Done): void {
  program
    .command('version')
    .description('print the version of cni-sweep and of its JSON report')
    .option('--json', 'as JSON: { version, reportSchemaVersion, node }')
    .option('--verbose', 'stack traces on errors')
    .option('--no-color', 'no colour')
    .action((opts: { json?: boolean }) => {
      io.stdout.write(
        opts.json
          ? JSON.stringify({ version: VERSION, reportSchemaVersion: REPORT_SCHEMA_VERSION, node: process.version }, null, 2) + '\n'
          : `cni-sweep ${VERSION}\n`,
      );
      done(0);
    });
}
