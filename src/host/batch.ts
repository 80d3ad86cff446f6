// Several read-only commands started by one process. Each spawn blocks Node's event loop for
// several milliseconds (on a 2-core VM, 8-11 ms: the fork of a process of Node's size and the
// set-up around it), so a dozen listings cost a tenth of a second before the last one even starts;
// bash forks them for a fraction of that. Each command keeps a stdout and a stderr of its own (pipes,
// never files: a full /tmp must not truncate a listing). bash forks once per command: a fork costs
// this VM ~6 ms of CPU (the page tables copied, each page written afterwards faulting), and a
// wrapper per command that reported its status the moment it ended took a second one. The
// statuses come afterwards instead, `wait` by `wait`, in the order the commands were given, except
// for those the caller says are slow (RealHost.prefetch: the firewall dumps), which come last: an
// answer is ready once its own command and those reported before it have ended.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { XTABLES_TOOL } from './host.js';
import { bashArgs, bashEnv } from './process.js';

export type BatchAnswer =
  | { code: number; stdout: string; stderr: string }
  /** The batch could not run it (bash missing or killed): read it alone. */
  | 'alone'
  | 'timeout';

/** How long after the kill the batch's pipes are waited for, before they are closed from this end. */
const GRACE_MS = 1000;

/** bash's word for an argument: quoted, so nothing in it is expanded. */
const word = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The script: command i writes to fds 3+2i (stdout) and 4+2i (stderr). Every other job closes
 * those, and so does bash once all have started, so that a pipe ends when its own command ends.
 * `exec` runs the program found on PATH, never a function or builtin of that name; in a
 * background subshell bash does not fork again for it. `coalesce`d commands (nft writes a listing
 * a few bytes per write(2)) go through dd, which hands Node 64 KiB at a time, in a group that
 * reports the command's own status (and dd's: one that fails sends it to be read alone).
 */
export function batchScript(argvs: string[][], coalesce: (argv: string[]) => boolean, slow: (argv: string[]) => boolean): string {
  const fds = argvs.flatMap((_, i) => [3 + 2 * i, 4 + 2 * i]);
  const closeExcept = (i: number) =>
    fds
      .filter((fd) => fd !== 3 + 2 * i && fd !== 4 + 2 * i)
      .map((fd) => `${fd}>&-`)
      .join(' ');
  const waits: string[] = [];
  const slowWaits: string[] = [];
  const jobs = argvs.map((argv, i) => {
    const cmd = `( exec ${argv.map(word).join(' ')} ) </dev/null`;
    if (coalesce(argv))
      return `{ ${cmd} 2>&${4 + 2 * i} | dd obs=65536 status=none >&${3 + 2 * i}; builtin echo "${i} \${PIPESTATUS[0]} \${PIPESTATUS[1]}"; } ${closeExcept(i)} &`;
    (slow(argv) ? slowWaits : waits).push(`wait $p${i}; builtin echo "${i} $?"`);
    return `${cmd} >&${3 + 2 * i} 2>&${4 + 2 * i} ${closeExcept(i)} & p${i}=$!`;
  });
  return [...jobs, `exec ${fds.map((fd) => `${fd}>&-`).join(' ')}`, ...waits, ...slowWaits, 'wait', ''].join('\n');
}

interface Job {
  out: Buffer[];
  err: Buffer[];
  status?: number;
  /** Its stdout and stderr pipes not yet closed. */
  open: number;
  settle: (a: BatchAnswer) => void;
  done: boolean;
}

/** A firewall dump: an iptables save of any backend or family, or an nft listing. The slow reads. */
export const firewallDump = (r: string[]) => r[0] === 'nft' || XTABLES_TOOL.exec(r[0] ?? '')?.[2] === 'save';

export function batchRead(
  argvs: string[][],
  timeoutMs: number,
  coalesce: (argv: string[]) => boolean,
  slow: (argv: string[]) => boolean,
): Array<Promise<BatchAnswer>> {
  return startBatch(argvs, timeoutMs, coalesce, slow, false).answers;
}

/**
 * batchRead, unref'd if asked: the batch then keeps the process alive only once ref() is called
 * (the loader's early reads, src/host/early.ts: a command that never asks for them exits at once).
 */
export function startBatch(
  argvs: string[][],
  timeoutMs: number,
  coalesce: (argv: string[]) => boolean,
  slow: (argv: string[]) => boolean,
  unref: boolean,
): { answers: Array<Promise<BatchAnswer>>; ref: () => void } {
  const jobs: Job[] = [];
  const answers = argvs.map(() => new Promise<BatchAnswer>((settle) => jobs.push({ out: [], err: [], open: 2, settle, done: false })));
  const finish = (job: Job, a: BatchAnswer) => {
    if (job.done) return;
    job.done = true;
    job.settle(a);
  };
  const maybeDone = (job: Job) => {
    if (job.status === undefined || job.open > 0) return;
    const stderr = Buffer.concat(job.err).toString('utf8');
    // Gone from PATH since it was looked up: alone, it is answered as a missing command is.
    if (job.status === 127 && /exec: .*: not found\n$/.test(stderr)) finish(job, 'alone');
    else finish(job, { code: job.status, stdout: Buffer.concat(job.out).toString('utf8'), stderr });
  };
  const child = spawn('bash', bashArgs(batchScript(argvs, coalesce, slow)), {
    // A session of its own, as every other command: a Ctrl-C to the terminal does not reach it.
    detached: true,
    env: bashEnv(),
    stdio: ['ignore', 'pipe', 'ignore', ...argvs.flatMap(() => ['pipe', 'pipe'] as const)],
  });
  // The reads still running when the time was up: by the time the batch's 'close' comes, every
  // pipe has closed (the kill closed them), so only this moment tells them from those that ended.
  let running = new Set<Job>();
  let grace: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    running = new Set(jobs.filter((j) => !j.done && j.open > 0));
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    // A command that left bash's process group keeps its pipes, and 'close' would wait for it.
    grace = setTimeout(() => {
      for (const s of child.stdio) (s as Readable | null)?.destroy();
      end();
    }, GRACE_MS);
  }, timeoutMs);
  let lines = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    lines += chunk.toString('latin1');
    let nl: number;
    while ((nl = lines.indexOf('\n')) >= 0) {
      const [i, code, dd] = lines.slice(0, nl).split(' ').map(Number);
      lines = lines.slice(nl + 1);
      const job = jobs[i ?? -1];
      if (!job || !Number.isInteger(code)) continue;
      // A dd that failed (one without status=none, say) may have lost the output: read it alone.
      if (dd !== undefined && dd !== 0) finish(job, 'alone');
      job.status = code;
      maybeDone(job);
    }
  });
  jobs.forEach((job, i) => {
    for (const [fd, into] of [
      [3 + 2 * i, job.out],
      [4 + 2 * i, job.err],
    ] as const) {
      const s = child.stdio[fd] as Readable | null;
      s?.on('data', (c: Buffer) => into.push(c));
      s?.on('close', () => {
        job.open--;
        maybeDone(job);
      });
      if (!s) job.open--;
    }
  });
  const end = () => {
    clearTimeout(timer);
    clearTimeout(grace);
    // A command that ended (its pipes closed) but whose status was still to come after a slower
    // one's is read again alone; only those still running when the batch timed out have timed out.
    for (const job of jobs) finish(job, running.has(job) ? 'timeout' : 'alone');
  };
  child.on('error', end);
  // 'close' is emitted from inside the last stream's own 'close' event, before the listener above
  // has counted that stream: ending at once would send a finished read to be made again alone.
  child.on('close', () => setImmediate(end));
  const handles = [child, timer, ...child.stdio.filter((x) => x !== null)] as Array<{ ref(): unknown; unref(): unknown }>;
  if (unref) for (const h of handles) h.unref();
  return {
    answers,
    ref: () => {
      for (const h of handles) h.ref();
    },
  };
}
