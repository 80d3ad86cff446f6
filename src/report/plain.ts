// Progress on stderr without a terminal (pipes, logs, Ansible, NO_COLOR): the lines a terminal
// shows, without colour and spinner. Whole command lines only with --verbose; --quiet leaves
// warnings alone.
import type { Reporter, SweepEvent } from '../events.js';
import { argvLine, phaseEndLine } from './lines.js';

export class PlainReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly verbose = false,
    private readonly quiet = false,
  ) {}

  emit(e: SweepEvent): void {
    const w = (s: string) => this.out.write(`cni-sweep: ${s}\n`);
    if (this.quiet && e.type !== 'warn') return;
    switch (e.type) {
      case 'phase-start':
        if (this.verbose) w(`${e.phase}: ${e.summary}`);
        break;
      case 'phase-end':
        w(phaseEndLine(e.phase, e.status, e.ms));
        break;
      case 'step-start':
        break;
      case 'step-end':
        // As on a terminal: a command that went well is not worth a line unless asked for.
        if (this.verbose || e.status !== 'ok')
          w(
            `  ${e.status === 'ok' ? 'ran' : e.status}: ${argvLine(e.step.argv, this.verbose)} (${e.ms} ms)${e.error ? `: ${e.error}` : ''}`,
          );
        break;
      case 'note':
        w(`${e.phase ? `${e.phase}: ` : ''}${e.text}`);
        break;
      case 'warn':
        w(`warning: ${e.text}`);
        break;
    }
  }

  pause(): void {}
}
