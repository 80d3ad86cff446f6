// The real host: child_process (host/process.ts) for commands, node:fs for reads. Every path is resolved under --root.
import fs from 'node:fs/promises';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandFailedError, RefusedError, UsageError } from '../errors.js';
import type { CallOptions, DirEntry, EntryType, ExecResult, Host, ProcessInfo, RemovalTarget, Step, Touch } from './host.js';
import { underRoot } from './host.js';
import { inRoot } from './in-root.js';
import { traced } from '../util/trace.js';
import { lazyCrypto } from '../util/lazy.js';
import { batchRead, firewallDump, type BatchAnswer } from './batch.js';
import { bashArgs, bashEnv, DEFAULT_TIMEOUT_MS, runProcess } from './process.js';
import { takeEarly } from './early.js';
import { detachableMount } from './mounts.js';
import { dirListings, type EntryKind } from '../util/dir-listings.js';
import { tarMembers, type TarMember } from '../backup/tar.js';
import { decodeName, encodeName, fsPath, hasRawBytes } from '../util/names.js';

/** A process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or null. */
function startTime(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether the process that took a lock still runs. `start`, its start time recorded with its pid,
 * tells it from a process that got the same pid later (a lock left by a run killed before a
 * reboot, or long ago): that one does not hold the lock.
 */
function alive(pid: number, start?: string): boolean {
  if (start !== undefined) {
    const now = startTime(pid);
    if (now !== null && now !== start) return false;
  }
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) holds its pid but not the lock.
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** A read-only or unwritable root is bad input: say so in one line, before anything changed. */
function writeError(file: string) {
  return (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EROFS')
      throw new UsageError(
        `cannot write ${file}: read-only file system`,
        'cni-sweep needs a writable root for its lock, journal and backup',
      );
    if (code === 'EACCES' || code === 'EPERM') throw new UsageError(`cannot write ${file}: permission denied`);
    throw e;
  };
}

function statQuiet(p: string) {
  try {
    return statSync(p, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null; // EACCES and such: treated as not in use, as before
  }
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return 'other';
}

const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EPERM: 'Operation not permitted',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  EDQUOT: 'Disk quota exceeded',
  ELOOP: 'Too many levels of symbolic links',
};

/** What a command done in process answers: its output, and each failure on a line of stderr, exit 1. */
function inProcessResult(stdout: string, errors: string[]) {
  return { exitCode: errors.length ? 1 : 0, stdout, stderr: errors.map((l) => `${l}\n`).join(''), timedOut: false };
}

/**
 * `rm -f -- files`, done through node:fs (DESIGN allows it; the plan still shows the rm command): a
 * process per removal costs more than the unlinks. Same behaviour as rm: a missing file is fine (so
 * is one under a non-directory: rm -f takes ENOTDIR for missing too), a symlink is removed as a
 * link, every file is tried, and failures are worded as rm words them, with exit 1. Each path is
 * looked up inside the root (in-root.ts). `rm -rf` stays GNU rm's: it walks a tree with openat and
 * O_NOFOLLOW, so a directory swapped for a symlink during the walk cannot lead it elsewhere, as it
 * could Node's path-based one.
 */
function unlinkFiles(root: string, nodePaths: string[]) {
  const errors: string[] = [];
  for (const p of nodePaths) {
    try {
      unlinkSync(fsPath(inRoot(root, p, false)));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      errors.push(`rm: cannot remove '${underRoot(root, p)}': ${STRERROR[code] ?? code}`);
    }
  }
  return inProcessResult('', errors);
}

/**
 * The backup's `mkdir -p -m MODE -- DIRS` and `sha256sum -- FILES` (in its directory), done through
 * node:fs as rm -f is, for the same reason: a process costs more than the work. Same results as
 * GNU's: missing parents made, an existing directory left as it is, a new one given exactly MODE;
 * each checksum line `<hex>  <name>`, every file tried, failures worded as the tools word them,
 * exit 1. Any other form, and a name sha256sum would escape (a backslash, a line break), runs the
 * command: undefined, and nothing done.
 */
function builtIn(argv: string[], cwd: string | undefined): ReturnType<typeof inProcessResult> | undefined {
  const [cmd, ...args] = argv;
  // With -p, missing parents are made and an existing directory is fine. Without it (the backup's
  // own directory), each is made new, and one that exists is an error, whatever it is: a directory
  // or a link planted there is never written into.
  const parents = args[0] === '-p';
  const [m, modeArg, dashes, ...dirs] = parents ? args.slice(1) : args;
  if (cmd === 'mkdir' && cwd === undefined && m === '-m' && /^0?[0-7]{3}$/.test(modeArg ?? '') && dashes === '--' && dirs.length) {
    const mode = parseInt(modeArg!, 8);
    const errors: string[] = [];
    for (const dir of dirs) {
      try {
        // GNU makes missing parents with u+wx whatever the umask took off: it has to enter them.
        const first = parents ? mkdirSync(path.dirname(dir), { recursive: true }) : undefined;
        if (first)
          for (let d = path.dirname(dir); d.length >= first.length; d = path.dirname(d)) {
            const m = statSync(d).mode;
            if ((m & 0o300) !== 0o300) chmodSync(d, (m & 0o7777) | 0o300);
          }
        mkdirSync(dir, { mode });
        // The umask may have taken bits off; mkdir -m gives the directory its permissions whatever
        // it is, and keeps the setgid bit it inherited from its parent.
        const st = statSync(dir).mode;
        if ((st & 0o777) !== mode) chmodSync(dir, (st & 0o7000) | mode);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (parents && code === 'EEXIST' && isDirectory(dir)) continue;
        errors.push(`mkdir: cannot create directory '${dir}': ${STRERROR[code] ?? code}`);
      }
    }
    return inProcessResult('', errors);
  }
  if (cmd === 'sha256sum' && cwd !== undefined && args[0] === '--' && args.length > 1 && !args.some((a) => /[\\\n\r]/.test(a))) {
    const errors: string[] = [];
    let out = '';
    for (const name of args.slice(1)) {
      try {
        out += `${sha256File(path.resolve(cwd, name))}  ${name}\n`;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        errors.push(`sha256sum: ${name}: ${STRERROR[code] ?? code}`);
      }
    }
    return inProcessResult(out, errors);
  }
  return undefined;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Synchronous, as the other reads here: a trip through the thread pool per 64 KiB costs more than the read. */
function sha256File(file: string): string {
  const hash = lazyCrypto().createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

const LEGACY_TABLE_NAMES: Record<string, string> = {
  'iptables-legacy-save': 'ip_tables_names',
  'ip6tables-legacy-save': 'ip6_tables_names',
};

/**
 * An nft read that a change of links or namespaces leaves as it was: a table of a family other
 * than netdev (bound to devices; other tables outlive the devices their chains hook), and the
 * listing of every table (NFT_TABLE_LISTING), of which only the tables are read: they outlive
 * devices too.
 */
const nftOutlivesLinks = (r: string[]) =>
  r[1] === 'list' && ((r[2] === 'table' && r[3] !== 'netdev') || (r[2] === 'flowtables' && r.length === 3));

/** Readers whose answers a kind of change can alter, by the argv that printed them. */
const STALE: Record<Touch, (r: string[]) => boolean> = {
  // Files: a look inside a pod namespace (nsenter opens its file). The ids of the namespace files
  // (the netns phase's unshare ... ip netns list) change only with those files, which no step but
  // the netns phase's own removes, and its steps declare `namespaces`.
  files: (r) => r[0] === 'nsenter',
  // Links: what ip and nsenter show, and a netdev table (bound to devices; other nftables tables
  // outlive the devices their chains hook). Never an iptables dump: so the firewall phase plans on
  // the dump read at the start, not on a second read of thousands of rules. Nor the namespace ids:
  // the kernel gives a peer namespace its id when a link first refers to it and takes it back only
  // when that namespace dies, which deleting the link does not do (its file still holds it).
  links: (r) => r[0] === 'ip' || r[0] === 'nsenter' || (r[0] === 'nft' && !nftOutlivesLinks(r)),
  namespaces: (r) => r[0] === 'ip' || r[0] === 'nsenter' || r[0] === 'unshare' || (r[0] === 'nft' && !nftOutlivesLinks(r)),
  routes: (r) => r[0] === 'ip' && r.includes('route'),
  firewall: firewallDump,
  nft: firewallDump,
  own: () => false,
};

/**
 * Which cached listings (by the argv that printed them) a change can alter, from what the step
 * declares it touches. A step that declares nothing may alter anything (systemctl, kubectl,
 * crictl, modprobe, a phase that does not say): every listing is read again after it.
 */
export function staleAfter(change: Step): (reader: string[]) => boolean {
  const touches = change.touches;
  if (!touches) return () => true;
  const tests = touches.map((t) => STALE[t] ?? (() => true));
  return (r) => tests.some((t) => t(r));
}

/** The node paths of a declared unlink, when the argv is exactly `rm -f -- <them under the root>`; else null (the command runs). */
export function declaredUnlinks(root: string, step: Step): string[] | null {
  if (!step.unlinks || step.stdin !== undefined) return null;
  const paths = step.unlinks.map((p) => underRoot(root, p));
  const [rm, f, dashes, ...rest] = step.argv;
  if (rm !== 'rm' || f !== '-f' || dashes !== '--' || rest.length !== paths.length || rest.some((p, i) => p !== paths[i])) return null;
  return step.unlinks;
}

/**
 * `cat > FILE <<EOF` (the backup's undo scripts and manifest): what cat would print is its input,
 * written to the file below as any step's output is, without a process for it.
 */
function copiedInput(step: Step): step is Step & { stdin: string } {
  return (
    step.argv.length === 1 && step.argv[0] === 'cat' && step.stdin !== undefined && step.stdoutTo !== undefined && step.cwd === undefined
  );
}

/** ip's flags that take no value: their order changes nothing ip prints. */
const IP_FLAGS = /^-[dj46]$/;

/**
 * The key an answer is kept under: the argv, with ip's leading flags in one order, so that the
 * backup's `ip -d -j link show` takes the listing inspection read as `ip -j -d link show` (the
 * same output, read once) instead of starting ip again.
 */
export function answerKey(argv: string[]): string {
  if (argv[0] !== 'ip') return argv.join('\0');
  let n = 1;
  while (n < argv.length && IP_FLAGS.test(argv[n]!)) n++;
  return ['ip', ...argv.slice(1, n).sort(), ...argv.slice(n)].join('\0');
}

/** The largest node file cni-sweep reads (configs, subnet.env, pidfiles are a few kB). */
const MAX_NODE_FILE = 16 * 1024 * 1024;

/** An error for a node file cni-sweep will not read; code ENOTREG, which callers may report as bad input. */
function notReadable(nodePath: string, why: string): Error {
  return Object.assign(new Error(`${nodePath}: ${why}: not read`), { code: 'ENOTREG' });
}

function fileKind(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

export class RealHost implements Host {
  private whichCache = new Map<string, boolean>();

  /** procNet: where the kernel's per-namespace tables are listed (a test points it elsewhere). */
  constructor(
    readonly root: string,
    private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS,
    private readonly procNet = '/proc/net',
  ) {}

  private async exec(argv: string[], stdin: string | undefined, opts?: CallOptions & { cwd?: string; unlinks?: string[] | null }) {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('empty argv');
    const unlinks = opts?.unlinks;
    return traced(`$ ${argv.join(' ')}`, async () => {
      if (unlinks) return unlinkFiles(this.root, unlinks);
      if (argv.some(hasRawBytes)) return this.spawnBytes(argv, stdin, opts);
      return builtIn(argv, opts?.cwd) ?? this.spawn(cmd, args, stdin, opts);
    });
  }

  /**
   * Node passes arguments as UTF-8: a file name that is not UTF-8 (see util/names) cannot be one.
   * bash takes the arguments byte for byte from stdin, NUL-separated, and execs the command with
   * them (as the plan's $'\xNN' words give them to it).
   */
  private spawnBytes(argv: string[], stdin: string | undefined, opts?: CallOptions & { cwd?: string }) {
    if (stdin !== undefined) throw new CommandFailedError(argv, null, '', 'a name that is not UTF-8 cannot go with standard input');
    const input = Buffer.concat(argv.flatMap((a) => [encodeName(a), Buffer.from([0])]));
    return runProcess('bash', bashArgs('mapfile -d "" -t a && exec "${a[@]}"'), {
      input,
      env: bashEnv(),
      cwd: opts?.cwd,
      timeoutMs: opts?.timeoutMs ?? this.defaultTimeoutMs,
    });
  }

  private async spawn(cmd: string, args: string[], stdin: string | undefined, opts?: CallOptions & { cwd?: string }) {
    const options = { input: stdin, cwd: opts?.cwd, timeoutMs: opts?.timeoutMs ?? this.defaultTimeoutMs };
    // nft writes its listings unbuffered, a few bytes per write(2): through a pipe, a big ruleset
    // wakes Node tens of thousands of times (a fifth of a second of CPU, taken from planning).
    // A temporary file takes them at no cost to this process.
    if (cmd !== 'nft' || stdin !== undefined) return runProcess(cmd, args, options);
    // Unlinked as soon as it is open: nothing is left behind, whatever happens to this process.
    // Without a usable temporary directory (read-only, missing $TMPDIR), the pipe still works.
    const file = path.join(os.tmpdir(), `cni-sweep-${process.pid}-${lazyCrypto().randomBytes(6).toString('hex')}`);
    let fd: number;
    try {
      fd = openSync(file, 'wx+', 0o600);
    } catch {
      return runProcess(cmd, args, options);
    }
    try {
      unlinkSync(file);
      const r = await runProcess(cmd, args, { ...options, stdoutFd: fd });
      const out = Buffer.alloc(fstatSync(fd).size);
      for (let n = 0, k = 1; n < out.length && k > 0; n += k) k = readSync(fd, out, n, out.length - n, n);
      return { ...r, stdout: out.toString('utf8') };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Reads between two changes see the same node: planning asks for the same listings several
   * times (iptables-save, ip link), so answers are kept until a change that can alter them (staleAfter).
   */
  private answers = new Map<string, Promise<ExecResult | null>>();

  query(argv: string[], opts?: CallOptions): Promise<ExecResult | null> {
    this.takeEarlyReads();
    const key = answerKey(argv);
    let answer = this.answers.get(key);
    if (!answer) {
      answer = this.run(argv, opts);
      this.answers.set(key, answer);
      answer.catch(() => this.answers.delete(key));
    }
    return answer;
  }

  /**
   * Starts these reads together, in one bash (host/batch.ts): query() then answers them from what
   * they printed. A read already answered, one that needs no process, a name that is not UTF-8 or
   * a command not on PATH is left to query() alone, and so is the batch when bash is missing.
   */
  prefetch(argvs: string[][]): void {
    this.takeEarlyReads();
    const batch = new Map<string, string[]>();
    const alone: string[][] = [];
    for (const argv of argvs) {
      const key = answerKey(argv);
      if (this.answers.has(key) || batch.has(key)) continue;
      if (this.batchable(argv)) batch.set(key, argv);
      else alone.push(argv);
    }
    // The listing of every table is a few lines: a dd for it would cost more than it saves.
    const coalesce = (argv: string[]) => argv[0] === 'nft' && !(argv[1] === 'list' && argv[2] === 'flowtables');
    const argvList = [...batch.values()];
    const together = argvList.length >= 2 && this.onPath('bash') && (!argvList.some(coalesce) || this.onPath('dd'));
    for (const argv of together ? alone : [...alone, ...argvList]) void this.query(argv).catch(() => {});
    if (!together) return;
    // bash reports the firewall dumps' statuses last: they take longest on a node with thousands of
    // rules, and the quick listings are answered as they end, not after them.
    const answers = batchRead(argvList, this.defaultTimeoutMs, coalesce, firewallDump);
    argvList.forEach((argv, i) => {
      this.answerFrom(argv, answers[i]!, 'batch');
    });
  }

  /** What a batch prints for this read is the answer to it (read alone if the batch could not run it). */
  private answerFrom(argv: string[], batched: Promise<BatchAnswer>, how: string): void {
    const key = answerKey(argv);
    let timedOut = false;
    const answer = traced(`$ ${argv.join(' ')} (${how})`, () => batched).then((a) => {
      if (a === 'alone') return this.run(argv);
      if (a === 'timeout') {
        timedOut = true;
        throw new CommandFailedError(argv, null, '', 'timed out');
      }
      return a;
    });
    this.answers.set(key, answer);
    // A read that timed out stays failed until a change: asked again, it would hang as long again.
    answer.catch(() => timedOut || this.answers.delete(key));
  }

  private tookEarly = false;

  /**
   * The loader's early reads (host/early.ts), by the first host to read: those this host would
   * batch itself (batchable) become its answers.
   */
  private takeEarlyReads(): void {
    if (this.tookEarly) return;
    this.tookEarly = true;
    const early = takeEarly();
    early?.argvs.forEach((argv, i) => {
      if (this.batchable(argv) && !this.answers.has(answerKey(argv))) this.answerFrom(argv, early.answers[i]!, 'early');
    });
  }

  /** A read a batch may make: on PATH, every argument UTF-8, not a legacy save answered without a process. */
  private batchable(argv: string[]): boolean {
    return !(argv.length === 1 && this.noLegacyTables(argv[0]!)) && !argv.some(hasRawBytes) && this.onPath(argv[0]!);
  }

  private async run(argv: string[], opts?: CallOptions): Promise<ExecResult | null> {
    if (argv.length === 1 && this.noLegacyTables(argv[0]!)) return { code: 0, stdout: '', stderr: '' };
    const r = await this.exec(argv, undefined, opts);
    if ((r as { code?: string }).code === 'ENOENT') return null;
    if (r.timedOut) throw new CommandFailedError(argv, null, String(r.stderr ?? ''), 'timed out');
    return { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  /**
   * `ip(6)tables-legacy-save` dumps the tables the kernel lists in /proc/net/ip(6)_tables_names (of
   * this network namespace) and prints nothing when it lists none or does not exist (the legacy
   * modules are not loaded). On the many nodes without legacy rules, that answer needs no process.
   */
  private noLegacyTables(cmd: string): boolean {
    const names = LEGACY_TABLE_NAMES[cmd];
    if (!names || !this.onPath(cmd)) return false;
    try {
      return readFileSync(path.join(this.procNet, names), 'utf8').trim() === '';
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }

  refresh(): void {
    this.answers.clear();
  }

  private forget(change: Step): void {
    const stale = staleAfter(change);
    for (const key of [...this.answers.keys()]) if (stale(key.split('\0'))) this.answers.delete(key);
  }

  async apply(step: Step, opts?: CallOptions): Promise<ExecResult> {
    // A read whose answer is already in hand (the backup's listings, started early) is not made twice.
    const readOnly = opts?.readOnly ?? (step.touches?.length === 1 && step.touches[0] === 'own');
    const asRead = readOnly && step.stdin === undefined && step.cwd === undefined;
    if (!readOnly) this.forget(step);
    const r = asRead
      ? await this.readStep(step.argv, opts)
      : copiedInput(step)
        ? { exitCode: 0, stdout: step.stdin, stderr: '', timedOut: false }
        : await this.exec(step.argv, step.stdin, { ...opts, cwd: step.cwd, unlinks: declaredUnlinks(this.root, step) });
    // Also after: a read made while the change ran may have seen the node half way.
    if (!readOnly) this.forget(step);
    const stderr = String(r.stderr ?? '');
    if ((r as { code?: string }).code === 'ENOENT') throw new CommandFailedError(step.argv, null, '', 'not found on PATH');
    if (r.timedOut) throw new CommandFailedError(step.argv, null, stderr, 'timed out');
    if (r.exitCode !== 0) throw new CommandFailedError(step.argv, r.exitCode ?? null, stderr || String(r.stdout ?? ''));
    const stdout = String(r.stdout ?? '');
    if (step.stdoutTo)
      await fs.writeFile(step.stdoutTo, stdout, { mode: 0o600 }).catch((err: unknown) => {
        const e = err as NodeJS.ErrnoException;
        throw new Error(`cannot write ${step.stdoutTo}: ${(STRERROR[e.code ?? ''] ?? e.message).toLowerCase()}`);
      });
    return { code: 0, stdout, stderr };
  }

  private async readStep(argv: string[], opts?: CallOptions) {
    const r = await this.query(argv, opts);
    return r
      ? { exitCode: r.code, stdout: r.stdout, stderr: r.stderr, timedOut: false }
      : { code: 'ENOENT', exitCode: undefined, stdout: '', stderr: '', timedOut: false };
  }

  /** Where a file the run writes goes: its directory looked up inside the root, the name as it is (a link there is replaced, not followed). */
  private writable(nodePath: string): string {
    const name = path.posix.basename(underRoot(this.root, nodePath));
    return path.posix.join(inRoot(this.root, path.posix.dirname(nodePath), true), name);
  }

  async lock(nodePath: string): Promise<() => Promise<void>> {
    const file = this.writable(nodePath);
    await fs.mkdir(path.dirname(file), { recursive: true }).catch(writeError(file));
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const start = startTime('self');
        await fs.writeFile(file, `${process.pid}${start ? ` ${start}` : ''}\n`, { flag: 'wx', mode: 0o644 });
        return async () => {
          const holder = await fs.readFile(file, 'utf8').catch(() => '');
          if (Number(holder.trim().split(' ')[0]) === process.pid) await fs.unlink(file).catch(() => {});
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') writeError(file)(e);
      }
      // "<pid> <start time>"; older versions wrote the pid alone.
      const [pidText, start] = (await fs.readFile(file, 'utf8').catch(() => '')).trim().split(' ');
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid, start)) {
        throw new RefusedError(
          `another cni-sweep run (pid ${pid}) holds ${file}`,
          'wait for it to finish; the lock is taken over automatically once that process is gone',
        );
      }
      // Stale: its process is gone. Remove it and try again.
      await fs.unlink(file).catch(() => {});
    }
    throw new RefusedError(`could not take the lock ${file}`);
  }

  async writeState(nodePath: string, content: string): Promise<void> {
    const file = this.writable(nodePath);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      // Made afresh (O_EXCL): a link left at the temporary name is replaced, never written through.
      await fs.rm(tmp, { force: true });
      await fs.writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
      await fs.rename(tmp, file);
    } catch (e) {
      // A full disk leaves a truncated temporary file: it is not the journal, and goes.
      await fs.rm(tmp, { force: true }).catch(() => {});
      writeError(file)(e);
    }
  }

  async unremovable(targets: RemovalTarget[]): Promise<Array<{ path: string; reason: string }>> {
    const out: Array<{ path: string; reason: string }> = [];
    const mounts = targets.length ? await this.mountPoints() : new Set<string>();
    const dirs = new Map<string, string | null>();
    // Mount points the plan unmounts before it removes the tree holding them.
    const gone = new Set(targets.filter((t) => t.unmounted).map((t) => t.path));
    // access(2) answers with the checks unlink(2) and rmdir(2) make: EROFS on a read-only mount,
    // EPERM for an immutable inode (chattr +i: even root may not write it), EACCES without
    // permission. Removing needs write access to the directory holding the entry, and an
    // immutable entry cannot be removed at all. No process, no parsing, and any file system.
    const refusal = (p: string, mode: number): string | null => {
      try {
        accessSync(p, mode);
        return null;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        return code === 'EPERM'
          ? 'immutable (chattr +i)'
          : code === 'EROFS'
            ? 'read-only file system'
            : (STRERROR[code] ?? code).toLowerCase();
      }
    };
    const dirRefusal = (dir: string): string | null => {
      if (!dirs.has(dir)) dirs.set(dir, refusal(dir, fsConstants.W_OK | fsConstants.X_OK));
      return dirs.get(dir)!;
    };
    const listing = dirListings(); // each directory read once, for all its entries
    const kindOf = (p: string): EntryKind | null => {
      const dir = path.dirname(p);
      const l = dir !== p ? listing(dir) : null;
      if (l && !(l instanceof Error)) return l.get(path.basename(p)) ?? null;
      // Its directory unreadable or gone: lstat says what it can.
      const st = lstatSync(p, { throwIfNoEntry: false });
      return !st ? null : st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : 'other';
    };
    const check = (p: string, tree: boolean, unmounted = false): boolean => {
      const kind = kindOf(p);
      if (!kind) return true;
      const inDir = dirRefusal(path.dirname(p));
      if (inDir) {
        out.push({
          path: p,
          reason: inDir === 'immutable (chattr +i)' ? `its directory ${path.dirname(p)} is immutable (chattr +i)` : inDir,
        });
        return false;
      }
      // A pod netns file is an nsfs mount until the plan unmounts it: what is mounted says nothing.
      if (unmounted) return true;
      if (mounts.has(p)) {
        out.push({ path: p, reason: 'a file system is mounted on it' });
        return false;
      }
      if (kind !== 'symlink') {
        const self = refusal(p, fsConstants.W_OK);
        if (self === 'immutable (chattr +i)' || self === 'read-only file system') {
          out.push({ path: p, reason: self });
          return false;
        }
      }
      if (tree && kind === 'dir') {
        const names = listing(p);
        if (names instanceof Error) {
          out.push({ path: p, reason: (STRERROR[(names as NodeJS.ErrnoException).code ?? ''] ?? String(names)).toLowerCase() });
          return false;
        }
        for (const name of names.keys()) {
          const child = path.join(p, name);
          if (!check(child, true, gone.has(child)) && out.length >= 20) return false;
        }
      }
      return true;
    };
    for (const t of targets) {
      check(t.path, t.tree, t.unmounted);
      if (out.length >= 20) break;
    }
    return out;
  }

  async tarMembers(archive: string): Promise<TarMember[]> {
    return tarMembers(readFileSync(archive));
  }

  async has(bin: string): Promise<boolean> {
    return this.onPath(bin);
  }

  private onPath(bin: string): boolean {
    const cached = this.whichCache.get(bin);
    if (cached !== undefined) return cached;
    let found = false;
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (!dir) continue;
      try {
        accessSync(path.join(dir, bin), fsConstants.X_OK); // synchronous: see the reads below
        found = true;
        break;
      } catch {
        /* keep looking */
      }
    }
    this.whichCache.set(bin, found);
    return found;
  }

  // The reads below are synchronous on purpose: a plan makes thousands of small ones (a stat per
  // result cache, a readlink per process), and a blocking call costs microseconds where a trip
  // through libuv's thread pool costs a tenth of a millisecond. The interface stays async.

  async readFile(nodePath: string): Promise<string | null> {
    try {
      // Only a regular file, of a size a node's file has: a FIFO named like a config would block the
      // open and the read forever, a link to /dev/zero never ends. O_NONBLOCK: the open of a FIFO returns.
      const fd = openSync(fsPath(inRoot(this.root, nodePath, true)), fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
      try {
        const st = fstatSync(fd);
        if (!st.isFile()) throw notReadable(nodePath, `not a regular file (${fileKind(st)})`);
        if (st.size > MAX_NODE_FILE)
          throw notReadable(nodePath, `${st.size} bytes, more than the ${MAX_NODE_FILE} cni-sweep reads of a file`);
        return readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      // A socket cannot be opened (ENXIO), a device without its driver neither (ENODEV): what they are is said as for a FIFO.
      if (code === 'ENXIO' || code === 'ENODEV') {
        const st = statSync(fsPath(inRoot(this.root, nodePath, true)), { throwIfNoEntry: false });
        throw notReadable(nodePath, `not a regular file (${st ? fileKind(st) : 'gone'})`);
      }
      throw e;
    }
  }

  async readDir(nodePath: string): Promise<DirEntry[] | null> {
    try {
      // Names as bytes: one that is not UTF-8 is kept exactly (util/names), not replaced by U+FFFD.
      const ents = readdirSync(fsPath(inRoot(this.root, nodePath, true)), { withFileTypes: true, encoding: 'buffer' });
      // Sorted by bytes, as libcni (Go) sorts the conf dir.
      return ents.sort((a, b) => Buffer.compare(a.name, b.name)).map((d) => ({ name: decodeName(d.name), type: typeOf(d) }));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw e;
    }
  }

  async entryType(nodePath: string): Promise<EntryType | null> {
    let real: string;
    try {
      real = inRoot(this.root, nodePath, false);
    } catch (e) {
      // A missing directory on the way, as lstat says when it meets one.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw e;
    }
    const st = lstatSync(fsPath(real), { throwIfNoEntry: false });
    return st ? typeOf(st) : null;
  }

  async realEntryType(realPath: string): Promise<EntryType | null> {
    const st = lstatSync(fsPath(realPath), { throwIfNoEntry: false });
    return st ? typeOf(st) : null;
  }

  async readLink(nodePath: string): Promise<string | null> {
    try {
      return readlinkSync(fsPath(inRoot(this.root, nodePath, false)), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EINVAL' || code === 'ENOTDIR') return null;
      throw e;
    }
  }

  async mountPoints(): Promise<Set<string>> {
    let text = '';
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      /* no /proc: nothing is known to be mounted */
    }
    const out = new Set<string>();
    for (const line of text.split('\n')) {
      const f = line.split(' ');
      // Field 5 is the mount point, with spaces and such octal-escaped.
      if (f[4]) out.add(f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
    }
    return out;
  }

  async detachableMount(dir: string, names: string[]): Promise<string | null> {
    // Linux 3.18 and later let unlink remove a file that is a mount point in other mount namespaces
    // only, detaching those mounts; before, it fails with EBUSY.
    const [major = 0, minor = 0] = os
      .release()
      .split('.')
      .map((n) => parseInt(n, 10));
    if (major < 3 || (major === 3 && minor < 18)) return null;
    try {
      const real = realpathSync(dir);
      const files = names.map((n) => path.posix.join(real, n));
      return detachableMount(readFileSync('/proc/self/mountinfo', 'utf8'), real, files);
    } catch {
      return null; // no /proc, or the directory is gone
    }
  }

  async netnsInUse(paths: string[]): Promise<Set<string>> {
    const inodes = new Map<number, string>();
    for (const p of paths) {
      const st = statQuiet(p);
      // An unmounted (stale) netns file is a plain empty file, not an nsfs inode: nobody uses it.
      if (st && st.size === 0 && st.ino) inodes.set(st.ino, p);
    }
    const used = new Set<string>();
    if (!inodes.size) return used;
    let pids: string[] = [];
    try {
      pids = readdirSync('/proc');
    } catch {
      return used;
    }
    for (const pid of pids) {
      if (!/^\d+$/.test(pid)) continue;
      let link: string | null = null;
      try {
        link = readlinkSync(`/proc/${pid}/ns/net`);
      } catch {
        continue; // gone, or a kernel thread
      }
      const m = /^net:\[(\d+)\]$/.exec(link);
      const hit = m ? inodes.get(Number(m[1])) : undefined;
      if (hit) used.add(hit);
    }
    return used;
  }

  async processes(): Promise<ProcessInfo[]> {
    const ns = (pid: string) => {
      try {
        return readlinkSync(`/proc/${pid}/ns/net`);
      } catch (e) {
        // Another user's process, read without root: its namespace is unknown, so it counts (a
        // live agent must never be missed); gone or a kernel thread: it does not.
        return (e as NodeJS.ErrnoException).code === 'EACCES' ? 'unknown' : null;
      }
    };
    const own = ns('self');
    let pids: string[] = [];
    try {
      pids = readdirSync('/proc');
    } catch {
      return [];
    }
    const out: ProcessInfo[] = [];
    for (const pid of pids) {
      if (!/^\d+$/.test(pid)) continue;
      const theirs = ns(pid);
      if (theirs === null || (theirs !== 'unknown' && theirs !== own)) continue;
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (argv.at(-1) === '') argv.pop();
        if (!argv.length) continue; // a kernel thread, or a zombie
        out.push({ pid: Number(pid), comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), argv });
      } catch {
        /* exited meanwhile */
      }
    }
    return out;
  }

  isRoot(): boolean {
    return process.getuid?.() === 0;
  }

  hostname(): string {
    return os.hostname();
  }
}
