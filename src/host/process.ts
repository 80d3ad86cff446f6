// One command as the real host runs it: child_process.spawn, with only what the host needs (its
// standard input given whole, stdout and stderr as text, a timeout that stops it, a missing
// program as an answer rather than a throw). execa did this before at about twice the cost to
// Node per command (measured by spawning /bin/true 40 times, 5 rounds: 8.5-14.6 ms of Node's CPU
// each with execa, 3.9-8.3 ms with this), and a full run starts dozens, one after another.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  /** Undefined when it did not start (see code) or was killed by a signal. */
  exitCode?: number;
  /** The errno code when it could not be started: ENOENT (not on PATH), EACCES ... */
  code?: string;
  signal?: string;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ProcessOptions {
  /** Written to its stdin, which is then closed; without it, stdin is /dev/null. */
  input?: string | Buffer;
  cwd?: string;
  timeoutMs: number;
  /** A file descriptor its stdout goes to instead of a pipe (stdout is then ""). */
  stdoutFd?: number;
  /** After the timeout's SIGTERM, the time it has to end before SIGKILL. */
  forceKillMs?: number;
  /** Instead of the caller's environment in the C locale. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The arguments of a bash of ours running `script`. --norc: bash runs ~/.bashrc when it takes
 * itself for sshd's command (a socket on stdin, as Node's pipes are, or SSH_CLIENT set, with no
 * SHLVL: a run from cron or a unit), into the output of what it runs.
 */
export function bashArgs(script: string): string[] {
  return ['--norc', '--noprofile', '-c', script];
}

/** The environment a bash of ours starts with: the caller's, in the C locale, without what bash would run first. */
export function bashEnv(): NodeJS.ProcessEnv {
  // SHELLOPTS/BASHOPTS exported by the caller would set bash's options (monitor: every job a
  // process group of its own, out of reach of the batch's timeout; errexit; xtrace into stderr).
  const skip = (k: string) => ['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS'].includes(k) || k.startsWith('BASH_FUNC_');
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !skip(k))), LC_ALL: 'C' };
}

/** How long a command may take, unless its caller says otherwise (a drain says its own). */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** As execa gave it. */
const FORCE_KILL_MS = 5000;

export function runProcess(cmd: string, args: string[], o: ProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, {
        cwd: o.cwd,
        // A session of its own: Ctrl-C or a hang-up reaches a terminal's whole process group, and
        // must stop cni-sweep between steps, not kill an `ip -batch` or a drain half way.
        detached: true,
        env: o.env ?? { ...process.env, LC_ALL: 'C' },
        stdio: [o.input === undefined ? 'ignore' : 'pipe', o.stdoutFd ?? 'pipe', 'pipe'],
      });
    } catch (err) {
      // spawn throws (rather than emitting 'error') for arguments it refuses, e.g. a NUL byte.
      resolve({ code: (err as NodeJS.ErrnoException).code, stdout: '', stderr: (err as Error).message, timedOut: false });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    let force: NodeJS.Timeout | undefined;
    // Its whole process group (its session's: detached), so that a child it left holding the
    // pipes open cannot keep the run waiting past the timeout.
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill('SIGTERM');
      force = setTimeout(() => {
        kill('SIGKILL');
      }, o.forceKillMs ?? FORCE_KILL_MS);
    }, o.timeoutMs);
    let failed: NodeJS.ErrnoException | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      // Not started (ENOENT, EACCES): no 'close' follows for a process that never ran.
      failed = e;
      if (child.pid === undefined) finish(null, null);
    });
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      if (force) clearTimeout(force);
      resolve({
        exitCode: exitCode ?? undefined,
        code: failed?.code,
        signal: signal ?? undefined,
        stdout: Buffer.concat(out).toString('utf8'),
        // Not started: why, where the command's own message would be.
        stderr: Buffer.concat(err).toString('utf8') || (exitCode === null && failed ? failed.message : ''),
        timedOut,
      });
    };
    child.on('close', finish);
    if (o.input !== undefined && child.stdin) {
      // A command that exits without reading all of it (EPIPE) answers for itself by its status.
      child.stdin.on('error', () => {});
      child.stdin.end(o.input);
    }
  });
}
