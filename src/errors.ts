// Typed errors. Only cli.ts maps them to exit codes (see exitCodeFor).

export class CniSweepError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad usage or bad input: exit 2. */
export class UsageError extends CniSweepError {}

/** Refused: not root, lock held, not confirmed: exit 3. */
export class RefusedError extends CniSweepError {}

/** An external command exited non-zero (or timed out). */
export class CommandFailedError extends CniSweepError {
  constructor(
    readonly argv: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    reason?: string,
  ) {
    // GNU tar ends with a line that only says it gave up; the line before says why.
    const lines = stderr
      .trim()
      .split('\n')
      .filter((l) => l && !/^tar: (Error is not recoverable|Exiting with failure status)/.test(l));
    // The cause before its consequences: mkdir of DIR and DIR/sub on a read-only disk says
    // "Read-only file system" for DIR, then "No such file or directory" for DIR/sub.
    const cause = /Read-only file system|No space left on device|Permission denied|Operation not permitted|Disk quota exceeded/;
    const tail = lines.find((l) => cause.test(l)) ?? lines.at(-1) ?? '';
    super(`${shortArgv(argv)} ${reason ?? `exited ${exitCode}`}${tail ? `: ${tail}` : ''}`);
  }
}

const SHORT_ARGV = 200;

/**
 * A command for a one-line message: a step that removes 250 pods' files carries tens of
 * kilobytes of paths, so a long one shows its options, its first operand and how many there are.
 * The full argv is in the JSON report (and printed with --verbose).
 */
export function shortArgv(argv: string[]): string {
  const full = argv.join(' ');
  if (full.length <= SHORT_ARGV) return full;
  const dashes = argv.indexOf('--');
  let head = dashes >= 0 && dashes < 8 ? dashes + 1 : argv.findIndex((a, i) => i > 0 && !a.startsWith('-'));
  if (head < 1 || head >= argv.length) head = Math.max(1, argv.length - 1);
  const operands = argv.slice(head);
  const clip = (a: string) => (a.length > 80 ? `${a.slice(0, 77)}...` : a);
  const shown = [...argv.slice(0, head), operands[0] ?? ''].map(clip).join(' ');
  return operands.length > 1 ? `${shown} ... (${operands.length} ${dashes >= 0 ? 'paths' : 'arguments'})` : shown;
}

/** A phase failed: exit 1. */
export class PhaseFailedError extends CniSweepError {
  constructor(
    readonly phase: string,
    readonly cause: Error,
  ) {
    super(`phase ${phase} failed: ${cause.message}`);
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return 2;
  if (err instanceof RefusedError) return 3;
  return 1;
}
