// Plain progress lines on stderr, for pipes, logs and Ansible.
import type { Reporter, SweepEvent } from '../events.js';
import { renderArgv } from '../util/shell.js';

export class PlainReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly verbose = false,
  ) {}

  emit(e: SweepEvent): void {
    const w = (s: string) => this.out.write(`cni-sweep: ${s}\n`);
    switch (e.type) {
      case 'phase-start':
        if (this.verbose) w(`[${e.phase}] ${e.summary}`);
        break;
      case 'phase-end':
        w(`[${e.phase}] ${e.status} (${e.ms} ms)`);
        break;
      case 'step-start':
        if (this.verbose) w(`[${e.phase}] $ ${renderArgv(e.step.argv)}`);
        break;
      case 'step-end':
        w(
          `[${e.phase}] ${e.status === 'ok' ? 'ran' : e.status}: ${renderArgv(e.step.argv)}${e.step.removes ? ` (${e.step.removes.items.length} × ${e.step.removes.kind})` : ''}${e.error ? `: ${e.error}` : ''}`,
        );
        break;
      case 'note':
        w(`${e.phase ? `[${e.phase}] ` : ''}${e.text}`);
        break;
      case 'warn':
        w(`warning: ${e.text}`);
        break;
    }
  }

  pause(): void {}
}
