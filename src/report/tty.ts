// Colour and one spinner per phase, only when stderr is a terminal.
import chalk from 'chalk';
import ora, { type Ora } from 'ora';
import type { Reporter, SweepEvent } from '../events.js';
import { argvLine, phaseEndLine } from './lines.js';

export class TtyReporter implements Reporter {
  private spinner: Ora | null = null;
  /** What each running phase shows; phases may run side by side (the firewall beside the links). */
  private running = new Map<string, string>();

  constructor(private readonly verbose = false) {}

  emit(e: SweepEvent): void {
    switch (e.type) {
      case 'phase-start':
        this.running.set(e.phase, `${chalk.bold(e.phase)} ${chalk.dim(e.summary)}`);
        this.spin();
        break;
      case 'step-start':
        if (this.running.has(e.phase)) {
          this.running.set(e.phase, `${chalk.bold(e.phase)} ${argvLine(e.step.argv, false)}`);
          this.spin();
        }
        break;
      case 'step-end':
        if (this.verbose || e.status !== 'ok')
          this.line(
            `  ${e.status === 'ok' ? chalk.green('✔') : chalk.red('✖')} ${argvLine(e.step.argv, this.verbose)} ${chalk.dim(`${e.ms} ms`)}${e.error ? ` ${chalk.red(e.error)}` : ''}`,
          );
        break;
      case 'phase-end': {
        const text = `${chalk.bold(e.phase)} ${chalk.dim(phaseEndLine(e.phase, e.status, e.ms).slice(e.phase.length + 1))}`;
        if (!this.spinner || !this.running.delete(e.phase)) break;
        if (e.status === 'failed') this.spinner.fail(text);
        else if (e.status === 'ok') this.spinner.succeed(text);
        else if (e.status === 'interrupted') this.spinner.warn(text);
        else this.spinner.info(text);
        this.spinner = null;
        if (this.running.size) this.spin();
        break;
      }
      case 'note':
        this.line(chalk.dim(`  ${e.phase ? `${e.phase}: ` : ''}${e.text}`));
        break;
      case 'warn':
        this.line(chalk.yellow(`warning: ${e.text}`));
        break;
    }
  }

  private line(s: string) {
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      process.stderr.write(s + '\n');
      this.spinner.render();
    } else process.stderr.write(s + '\n');
  }

  /** One spinner, naming every phase that runs. */
  private spin() {
    const text = [...this.running.values()].join(chalk.dim(' · '));
    if (this.spinner) this.spinner.text = text;
    // discardStdin would put the terminal in raw mode: the terminal would then no longer turn
    // Ctrl-C into SIGINT, and the run could not be stopped from the keyboard.
    else this.spinner = ora({ text, stream: process.stderr, discardStdin: false }).start();
  }

  pause(): void {
    this.spinner?.stop();
    this.spinner = null;
    this.running.clear();
  }
}
