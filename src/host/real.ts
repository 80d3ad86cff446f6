// The real host: execa for commands, node:fs for reads. Every path is resolved under --root.
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { CommandFailedError, RefusedError, UsageError } from '../errors.js';
import type { CallOptions, DirEntry, EntryType, ExecResult, Host, Step } from './host.js';
import { underRoot } from './host.js';

const DEFAULT_TIMEOUT_MS = 60_000;

function alive(pid: number): boolean {
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
    if (code === 'EROFS') throw new UsageError(`cannot write ${file}: read-only file system`, 'cni-sweep needs a writable root for its lock, journal and backup');
    if (code === 'EACCES' || code === 'EPERM') throw new UsageError(`cannot write ${file}: permission denied`);
    throw e;
  };
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return 'other';
}

export class RealHost implements Host {
  private whichCache = new Map<string, boolean>();

  constructor(readonly root: string, private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS) {}

  private async exec(argv: string[], stdin: string | undefined, opts?: CallOptions & { cwd?: string }) {
    const [cmd, ...args] = argv;
    return execa(cmd, args, {
      input: stdin,
      cwd: opts?.cwd,
      stdin: stdin === undefined ? 'ignore' : undefined,
      reject: false,
      timeout: opts?.timeoutMs ?? this.defaultTimeoutMs,
      env: { LC_ALL: 'C' },
      stripFinalNewline: false,
    });
  }

  /**
   * Reads between two changes see the same node: planning asks for the same listings several
   * times (iptables-save, ip link), so answers are kept until the next apply().
   */
  private answers = new Map<string, Promise<ExecResult | null>>();

  query(argv: string[], opts?: CallOptions): Promise<ExecResult | null> {
    const key = argv.join('\0');
    let answer = this.answers.get(key);
    if (!answer) {
      answer = this.run(argv, opts);
      this.answers.set(key, answer);
      answer.catch(() => this.answers.delete(key));
    }
    return answer;
  }

  private async run(argv: string[], opts?: CallOptions): Promise<ExecResult | null> {
    const r = await this.exec(argv, undefined, opts);
    if ((r as { code?: string }).code === 'ENOENT') return null;
    if (r.timedOut) throw new CommandFailedError(argv, null, String(r.stderr ?? ''), 'timed out');
    return { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  async apply(step: Step, opts?: CallOptions): Promise<ExecResult> {
    this.answers.clear();
    const r = await this.exec(step.argv, step.stdin, { ...opts, cwd: step.cwd });
    const stderr = String(r.stderr ?? '');
    if ((r as { code?: string }).code === 'ENOENT') throw new CommandFailedError(step.argv, null, '', 'not found on PATH');
    if (r.timedOut) throw new CommandFailedError(step.argv, null, stderr, 'timed out');
    if (r.exitCode !== 0) throw new CommandFailedError(step.argv, r.exitCode ?? null, stderr || String(r.stdout ?? ''));
    const stdout = String(r.stdout ?? '');
    if (step.stdoutTo) await fs.writeFile(step.stdoutTo, stdout, { mode: 0o600 });
    return { code: 0, stdout, stderr };
  }

  async lock(nodePath: string): Promise<() => Promise<void>> {
    const file = underRoot(this.root, nodePath);
    await fs.mkdir(path.dirname(file), { recursive: true }).catch(writeError(file));
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await fs.writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
        return async () => {
          const holder = await fs.readFile(file, 'utf8').catch(() => '');
          if (Number(holder.trim()) === process.pid) await fs.unlink(file).catch(() => {});
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') writeError(file)(e);
      }
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new RefusedError(`another cni-sweep run (pid ${pid}) holds ${file}`, 'wait for it to finish; the lock is taken over automatically once that process is gone');
      }
      // Stale: its process is gone. Remove it and try again.
      await fs.unlink(file).catch(() => {});
    }
    throw new RefusedError(`could not take the lock ${file}`);
  }

  async writeState(nodePath: string, content: string): Promise<void> {
    const file = underRoot(this.root, nodePath);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(tmp, content, { mode: 0o600 });
      await fs.rename(tmp, file);
    } catch (e) {
      writeError(file)(e);
    }
  }

  async has(bin: string): Promise<boolean> {
    const cached = this.whichCache.get(bin);
    if (cached !== undefined) return cached;
    let found = false;
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (!dir) continue;
      try {
        await fs.access(path.join(dir, bin), fs.constants.X_OK);
        found = true;
        break;
      } catch {
        /* keep looking */
      }
    }
    this.whichCache.set(bin, found);
    return found;
  }

  async readFile(nodePath: string): Promise<string | null> {
    try {
      return await fs.readFile(underRoot(this.root, nodePath), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async readDir(nodePath: string): Promise<DirEntry[] | null> {
    try {
      const ents = await fs.readdir(underRoot(this.root, nodePath), { withFileTypes: true });
      return ents.map((d) => ({ name: d.name, type: typeOf(d) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw e;
    }
  }

  async entryType(nodePath: string): Promise<EntryType | null> {
    try {
      return typeOf(await fs.lstat(underRoot(this.root, nodePath)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async mountPoints(): Promise<Set<string>> {
    const text = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const out = new Set<string>();
    for (const line of text.split('\n')) {
      const f = line.split(' ');
      // Field 5 is the mount point, with spaces and such octal-escaped.
      if (f[4]) out.add(f[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
    }
    return out;
  }

  async netnsInUse(paths: string[]): Promise<Set<string>> {
    const inodes = new Map<number, string>();
    for (const p of paths) {
      const st = await fs.stat(p).catch(() => null);
      // An unmounted (stale) netns file is a plain empty file, not an nsfs inode: nobody uses it.
      if (st && st.size === 0 && st.ino) inodes.set(st.ino, p);
    }
    const used = new Set<string>();
    if (!inodes.size) return used;
    const pids = await fs.readdir('/proc').catch(() => [] as string[]);
    for (const pid of pids) {
      if (!/^\d+$/.test(pid)) continue;
      const link = await fs.readlink(`/proc/${pid}/ns/net`).catch(() => null);
      const m = link && /^net:\[(\d+)\]$/.exec(link);
      const hit = m ? inodes.get(Number(m[1])) : undefined;
      if (hit) used.add(hit);
    }
    return used;
  }

  isRoot(): boolean {
    return process.getuid?.() === 0;
  }

  hostname(): string {
    return os.hostname();
  }
}
