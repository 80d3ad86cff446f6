// The host a run inspects and changes. Reads (query, files) never change anything; apply() is the
// only way to change the node, and only the runner calls it.
import path from 'node:path';
import { UsageError } from '../errors.js';

export interface Step {
  argv: string[];
  stdin?: string;
  /** Write the command's stdout to this (real) path, mode 0600; rendered as `> path`. */
  stdoutTo?: string;
  /** Run in this (real) directory; rendered as `(cd dir && ...)`. */
  cwd?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface DirEntry {
  name: string;
  type: EntryType;
}

export interface CallOptions {
  timeoutMs?: number;
  /**
   * apply() only: the step changes nothing a query sees (the backup reads the node and writes
   * cni-sweep's own files), so answers read before it stay valid, and it may be answered by one.
   */
  readOnly?: boolean;
}

export interface Host {
  /** Filesystem root every node path is resolved under. */
  readonly root: string;
  /** Runs a read-only command. Returns null when the binary is not installed. */
  query(argv: string[], opts?: CallOptions): Promise<ExecResult | null>;
  /** Runs a step that changes the node. Rejects with CommandFailedError on failure. */
  apply(step: Step, opts?: CallOptions): Promise<ExecResult>;
  /** Whether a binary is on PATH. */
  has(bin: string): Promise<boolean>;
  /** File contents, or null when absent. Throws on other errors (EACCES ...). */
  readFile(nodePath: string): Promise<string | null>;
  /** Directory entries (not following symlinks), or null when absent. */
  readDir(nodePath: string): Promise<DirEntry[] | null>;
  /** Type of a path without following a final symlink, or null when absent. */
  entryType(nodePath: string): Promise<EntryType | null>;
  /** A symlink's target as stored (not resolved), or null when the path is absent or not a symlink. */
  readLink?(nodePath: string): Promise<string | null>;
  /** Mount points (real paths), to tell a bind-mounted netns file from a stale one. */
  mountPoints(): Promise<Set<string>>;
  /** Which of these netns files (real paths) a running process still has as its network namespace. */
  netnsInUse(paths: string[]): Promise<Set<string>>;
  isRoot(): boolean;
  hostname(): string;
  /**
   * Takes the run lock (a pid file at a node path). Resolves to a release function; rejects with
   * RefusedError naming the holder when a live process holds it. A lock left by a dead process is taken over.
   */
  lock(nodePath: string): Promise<() => Promise<void>>;
  /** Forgets answers read so far: the node may have changed since (a prompt waited for its answer). */
  refresh?(): void;
  /** Writes cni-sweep's own bookkeeping (journal), atomically. */
  writeState(nodePath: string, content: string): Promise<void>;
}

/** An iptables save or restore tool of any backend and family: [1] the backend ("ip6tables-legacy"), [2] save|restore. */
export const XTABLES_TOOL = /^(ip6?tables(?:-nft|-legacy)?)-(save|restore)$/;

/**
 * Maps a node path ("/etc/cni/net.d") to the path under root. Rejects paths that would leave
 * the root through "..", so no profile or config can point a removal outside it.
 */
export function underRoot(root: string, nodePath: string): string {
  if (!nodePath.startsWith('/')) throw new UsageError(`not an absolute path: ${nodePath}`);
  const normal = path.posix.normalize(nodePath);
  if (normal.split('/').includes('..')) throw new UsageError(`path escapes the root: ${nodePath}`);
  return root === '/' ? normal : path.posix.join(root, normal);
}
