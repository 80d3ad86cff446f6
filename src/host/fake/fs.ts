// The fake node's filesystem: files, directories and symlinks keyed by real path, resolved the way
// the kernel resolves a path, and the commands cni-sweep changes files with, as GNU coreutils 9.1 and
// util-linux 2.38 do them: `rm -f|-rf -- PATHS`, `mkdir [-p] -m 0700 -- DIRS`, `umount --lazy -- PATHS`,
// `mv -n -T -- SRC DST` (a config another CNI set aside, put back under its name). Also the file
// reads the backup saves: `cat` of its stdin, `sha256sum -- FILES`. Any other form is left to
// FakeHost, which fails closed.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { clean, fail, OK, type FsNode, type Outcome } from './model.js';
import { detachArgv, detachedFiles } from '../mounts.js';

/** The part of the fake node its filesystem commands see and change. */
export interface FsState {
  readonly root: string;
  fs: Map<string, FsNode>;
  /** Real paths, as /proc/self/mountinfo shows them. */
  mounts: Set<string>;
}

/** Creates a directory and its parents; null when a component exists and is not a directory. */
export function mkdirAt(fs: Map<string, FsNode>, real: string, mode: number): string | null {
  const parts = real.split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0; i < parts.length; i++) {
    cur = path.posix.join(cur, parts[i]!);
    const n = fs.get(cur);
    if (!n) fs.set(cur, { type: 'dir', mode: i === parts.length - 1 ? mode : 0o755 });
    else if (n.type !== 'dir') return null;
  }
  return cur;
}

/**
 * Follows symlinks like path resolution does; the final component only when asked. With a root
 * other than "/", as the real host reads node paths (host/in-root.ts): an absolute target starts
 * again at the root, and ".." stops there.
 */
export function resolvePath(fs: Map<string, FsNode>, real: string, followLast: boolean, root = '/'): string | null {
  const top = clean(root);
  let parts = clean(real).split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0, hops = 0; i < parts.length; i++) {
    const next = path.posix.join(cur, parts[i]!);
    const node = fs.get(next);
    const last = i === parts.length - 1;
    if (node?.type === 'symlink' && (!last || followLast)) {
      if (++hops > 40) return null;
      const inRoot = top === '/' || cur === top || cur.startsWith(`${top}/`);
      // path.posix.resolve stops ".." at "/": taken relative to the root, it stops at the root.
      const target = inRoot
        ? path.posix.join(top, path.posix.resolve(`/${path.posix.relative(top, cur)}`, node.target))
        : path.posix.resolve(cur, node.target);
      parts = [...target.split('/').filter(Boolean), ...parts.slice(i + 1)];
      cur = '/';
      i = -1;
      continue;
    }
    if (!last && node?.type !== 'dir') return null;
    cur = next;
  }
  return cur;
}

/** Content of a file by real path, without following a symlink. */
export function fileContent(fs: Map<string, FsNode>, real: string): string | undefined {
  const n = fs.get(clean(real));
  return n?.type === 'file' ? n.content : undefined;
}

function underRootReal(root: string, real: string): boolean {
  const top = clean(root);
  const p = clean(real);
  return top === '/' ? p.startsWith('/') : p === top || p.startsWith(`${top}/`);
}

/** A filesystem change cni-sweep emits, as what running it does; undefined for any other command. */
export function fsCommand(node: FsState, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] === 'rm' && (argv[1] === '-f' || argv[1] === '-rf') && argv[2] === '--' && argv.length > 3) {
    const targets = argv.slice(3).map((p) => {
      // cni-sweep never removes anything outside the root: that is a bug, not a failed command.
      if (!underRootReal(node.root, p)) throw new Error(`FakeHost: ${p} is outside the root ${node.root}`);
      return clean(p);
    });
    return () => rm(node, targets, argv[1] === '-rf');
  }

  if (argv[0] === 'umount' && argv[1] === '--lazy' && argv[2] === '--' && argv.length > 3) {
    return () => {
      const errs: string[] = [];
      for (const p of argv.slice(3)) if (!node.mounts.delete(p)) errs.push(`umount: ${p}: not mounted.`);
      return errs.length ? fail(32, errs.join('\n') + '\n') : OK;
    };
  }

  if (argv[0] === 'mkdir' && argv[1] === '-m' && argv[2] === '0700' && argv[3] === '--' && argv.length > 4) {
    return () => {
      for (const d of argv.slice(4)) {
        if (node.fs.has(clean(d))) return fail(1, `mkdir: cannot create directory '${d}': File exists\n`);
        if (node.fs.get(path.posix.dirname(clean(d)))?.type !== 'dir')
          return fail(1, `mkdir: cannot create directory '${d}': No such file or directory\n`);
        mkdirAt(node.fs, clean(d), 0o700);
      }
      return OK;
    };
  }

  if (argv[0] === 'mkdir' && argv[1] === '-p' && argv[2] === '-m' && argv[3] === '0700' && argv[4] === '--' && argv.length > 5) {
    return () => {
      for (const d of argv.slice(5))
        if (mkdirAt(node.fs, clean(d), 0o700) === null) return fail(1, `mkdir: cannot create directory '${d}': Not a directory\n`);
      return OK;
    };
  }

  if (argv.length === 6 && argv[0] === 'mv' && argv[1] === '-n' && argv[2] === '-T' && argv[3] === '--')
    return mv(node, argv[4]!, argv[5]!);
  return undefined;
}

/**
 * The netns phase's one-process removal (mounts.ts DETACH_SCRIPT): in a private mount namespace,
 * unmount the mount holding the netns directory, then unlink the names there; unlinking detaches
 * the node's mounts of each file. Fails as umount does when that mount is not (or no longer) there.
 */
export function detachCommand(node: FsState & { netnsDirMount: string | null }, argv: string[]): (() => Outcome) | undefined {
  const files = detachedFiles(argv);
  if (!files || argv.join(' ') !== detachArgv(argv[8]!, argv[9]!, argv.slice(11)).join(' ')) return undefined;
  for (const f of files) if (!underRootReal(node.root, f)) throw new Error(`FakeHost: ${f} is outside the root ${node.root}`);
  return () => {
    const dir = resolvePath(node.fs, argv[8]!, true);
    if (dir === null || node.fs.get(dir)?.type !== 'dir') return fail(2, `sh: 1: cd: can't cd to ${argv[8]}\n`);
    if (argv[9] !== node.netnsDirMount) return fail(32, `umount: ${argv[9]}: not mounted.\n`);
    const errs: string[] = [];
    for (const n of argv.slice(11)) {
      const p = path.posix.join(dir, n);
      const f = node.fs.get(p);
      if (!f) continue;
      if (f.type === 'dir') errs.push(`rm: cannot remove '${n}': Is a directory`);
      else {
        node.fs.delete(p);
        node.mounts.delete(p);
      }
    }
    return errs.length ? fail(1, errs.join('\n') + '\n') : OK;
  };
}

function rm(node: FsState, targets: string[], recursive: boolean): Outcome {
  const errs: string[] = [];
  for (const t of targets) {
    // rm resolves the directories above a path but never the path itself.
    const p = resolvePath(node.fs, t, false);
    const n = p === null ? undefined : node.fs.get(p);
    if (!n || p === null) continue; // -f: a missing path is fine
    if (n.type === 'dir' && !recursive) {
      errs.push(`rm: cannot remove '${t}': Is a directory`);
      continue;
    }
    const doomed = [...node.fs.keys()].filter((k) => k === p || k.startsWith(`${p}/`));
    if (doomed.some((k) => node.mounts.has(k))) {
      errs.push(`rm: cannot remove '${t}': Device or resource busy`);
      continue;
    }
    for (const k of doomed) node.fs.delete(k);
  }
  return errs.length ? fail(1, errs.join('\n') + '\n') : OK;
}

/** A rename within one file system that silently leaves an existing DST alone (-n). */
function mv(node: FsState, from: string, to: string): () => Outcome {
  const { fs } = node;
  const [src, dst] = [clean(from), clean(to)];
  for (const p of [src, dst])
    if (clean(node.root) !== '/' && !underRootReal(node.root, p)) throw new Error(`FakeHost: ${p} is outside the root ${node.root}`);
  return () => {
    if (!fs.has(src)) return fail(1, `mv: cannot stat '${from}': No such file or directory\n`);
    if (fs.get(path.posix.dirname(dst))?.type !== 'dir')
      return fail(1, `mv: cannot move '${from}' to '${to}': No such file or directory\n`);
    if (fs.has(dst)) return OK;
    for (const [k, n] of [...fs]) {
      if (k !== src && !k.startsWith(`${src}/`)) continue;
      fs.delete(k);
      fs.set(dst + k.slice(src.length), n);
    }
    return OK;
  };
}

/** `cat` copying its stdin to the file the step saves to. */
export function catStdin(argv: string[], stdin: string): (() => Outcome) | undefined {
  return argv.join(' ') === 'cat' ? () => ({ code: 0, stdout: stdin }) : undefined;
}

/** `sha256sum -- FILES` run in `cwd`, as the backup's checksum list; undefined for any other form. */
export function sha256sum(node: FsState, argv: string[], cwd: string | undefined): (() => Outcome) | undefined {
  if (argv[0] !== 'sha256sum' || argv[1] !== '--' || argv.length <= 2 || cwd === undefined) return undefined;
  return () => {
    const lines: string[] = [];
    for (const rel of argv.slice(2)) {
      const content = fileContent(node.fs, path.posix.resolve(cwd, rel));
      if (content === undefined) return fail(1, `sha256sum: ${rel}: No such file or directory\n`);
      lines.push(`${createHash('sha256').update(content).digest('hex')}  ${rel}`);
    }
    return { code: 0, stdout: lines.join('\n') + '\n' };
  };
}
