// The progress lines every reporter shows, with or without a terminal: colour and the spinner are
// the only difference, so a pipe, NO_COLOR and Ansible read what a terminal shows.
import { renderArgv } from '../util/shell.js';

/** Longer than this, a command line is shortened unless --verbose: its operands are counted instead. */
const SHORT = 100;

/**
 * A command as one short line: `rm -rf -- (23 paths)`, `tar -C / -cf x.tar -- (250 paths)`. The
 * words before the operands (up to `--`, or the first few) stay; the operands are counted.
 */
export function shortArgv(argv: string[]): string {
  const full = renderArgv(argv);
  if (full.length <= SHORT) return full;
  const dd = argv.indexOf('--');
  const head = dd >= 0 ? argv.slice(0, dd + 1) : argv.slice(0, Math.min(argv.length - 1, 3));
  const rest = argv.length - head.length;
  const what = dd >= 0 || rest > 1 ? (argv.slice(head.length).every((a) => a.startsWith('/')) ? 'paths' : 'arguments') : 'argument';
  const shown = renderArgv(head);
  return `${shown.length > SHORT ? `${shown.slice(0, SHORT - 3)}...` : shown} (${rest} ${rest === 1 ? what.replace(/s$/, '') : what})`;
}

/** A command as the progress shows it: whole with --verbose, else short. */
export const argvLine = (argv: string[], verbose: boolean) => (verbose ? renderArgv(argv) : shortArgv(argv));

/** How a phase ended, as the spinner's last line says it: `interfaces ok, 12 ms`. */
export const phaseEndLine = (phase: string, status: string, ms: number) =>
  `${phase} ${status === 'nothing-to-do' ? 'nothing to do' : status}, ${ms} ms`;
