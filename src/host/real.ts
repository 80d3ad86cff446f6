// The real host: execa for commands, node:fs for reads. Every path is resolved under --root.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { CommandFailedError } from '../errors.js';
import type { CallOptions, DirEntry, EntryType, ExecResult, Host, Step } from './host.js';
import { underRoot } from './host.js';

const DEFAULT_TIMEOUT_MS = 60_000;

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return 'other';
}

export class RealHost implements Host {
  private whichCache = new Map<string, boolean>();

  constructor(readonly root: string, private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS) {}

  private async exec(argv: string[], stdin: string | undefined, opts?: CallOptions) {
    const [cmd, ...args] = argv;
    return execa(cmd, args, {
      input: stdin,
      stdin: stdin === undefined ? 'ignore' : undefined,
      reject: false,
      timeout: opts?.timeoutMs ?? this.defaultTimeoutMs,
      env: { LC_ALL: 'C' },
      stripFinalNewline: false,
    });
  }

  async query(argv: string[], opts?: CallOptions): Promise<ExecResult | null> {
    const r = await this.exec(argv, undefined, opts);
    if ((r as { code?: string }).code === 'ENOENT') return null;
    if (r.timedOut) throw new CommandFailedError(argv, null, String(r.stderr ?? ''), 'timed out');
    return { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  async apply(step: Step, opts?: CallOptions): Promise<ExecResult> {
    const r = await this.exec(step.argv, step.stdin, opts);
    const stderr = String(r.stderr ?? '');
    if ((r as { code?: string }).code === 'ENOENT') throw new CommandFailedError(step.argv, null, '', 'not found on PATH');
    if (r.timedOut) throw new CommandFailedError(step.argv, null, stderr, 'timed out');
    if (r.exitCode !== 0) throw new CommandFailedError(step.argv, r.exitCode ?? null, stderr || String(r.stdout ?? ''));
    return { code: 0, stdout: String(r.stdout ?? ''), stderr };
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
