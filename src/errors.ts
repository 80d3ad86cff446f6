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
    const tail = stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
    super(`${argv.join(' ')} ${reason ?? `exited ${exitCode}`}${tail ? `: ${tail}` : ''}`);
  }
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
