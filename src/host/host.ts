// The host a run inspects and changes. Reads (query, files) never change anything; apply() is the
// only way to change the node, and only the runner calls it.
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { TarMember } from '../backup/tar.js';

/**
 * What a step may change, by kind of node state. The host keeps the answers of queries until a
 * step that may alter them: it learns which from this, declared where the step is made.
 * - files: files and directories under the root (rm);
 * - links: interfaces and their addresses (ip link, ip address);
 * - routes: routes only (an ip -batch of `route ...` lines);
 * - namespaces: pod network namespace mounts (umount);
 * - firewall: iptables and ip6tables rules (an iptables-restore batch);
 * - nft: nftables tables (nft -f);
 * - own: only cni-sweep's own files (the backup): nothing a query sees.
 */
export type Touch = 'files' | 'links' | 'routes' | 'namespaces' | 'firewall' | 'nft' | 'own';

export interface Step {
  argv: string[];
  /**
   * What this step may change. Absent: anything (services, the CRI, the API server, a step of a
   * phase that declares nothing): every answer read before it is read again. Declare only what
   * is certain; a kind left out is a kind whose answers are trusted after the step.
   */
  touches?: Touch[];
  /**
   * The node paths a `rm -f -- <paths under the root>` step removes one by one: the host unlinks
   * them itself (the plan still shows the rm), joining each to the root. Only when the argv is
   * exactly that rm of exactly these paths; otherwise the command runs.
   */
  unlinks?: string[];
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

export interface RemovalTarget {
  path: string;
  tree: boolean;
  unmounted?: boolean;
}

/** A running process, as /proc shows it. */
export interface ProcessInfo {
  pid: number;
  /** The kernel's name for it (/proc/<pid>/comm, at most 15 characters). */
  comm: string;
  /** Its command line; argv[0] is what it calls itself (`exec -a` sets it). */
  argv: string[];
}

export interface CallOptions {
  timeoutMs?: number;
  /**
   * apply() only: the step changes nothing a query sees (the backup reads the node and writes
   * cni-sweep's own files), so answers read before it stay valid, and it may be answered by one.
   */
  readOnly?: boolean;
}

/** Starts these reads, together where the host can (prefetch), for query() to answer later. */
export function startReading(host: Host, argvs: string[][]): void {
  if (host.prefetch) host.prefetch(argvs);
  else for (const argv of argvs) host.query(argv).catch(() => {});
}

export interface Host {
  /** Filesystem root every node path is resolved under. */
  readonly root: string;
  /** Runs a read-only command. Returns null when the binary is not installed. */
  query(argv: string[], opts?: CallOptions): Promise<ExecResult | null>;
  /**
   * Starts these reads at once (a real host in one process: each spawn costs Node milliseconds);
   * query() then answers them. Without it, the caller starts each with query().
   */
  prefetch?(argvs: string[][]): void;
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
  /** Type of a real path (not under the root: --backup-dir may be anywhere), without following a final symlink; null when absent. */
  realEntryType(realPath: string): Promise<EntryType | null>;
  /** A symlink's target as stored (not resolved), or null when the path is absent or not a symlink. */
  readLink?(nodePath: string): Promise<string | null>;
  /** Mount points (real paths), to tell a bind-mounted netns file from a stale one. */
  mountPoints(): Promise<Set<string>>;
  /**
   * The mount point to unmount, in a private mount namespace, so that the netns files `names` of the
   * directory `dir` (a path under the root, symlinks resolved here) can be unlinked there
   * (host/mounts.ts detachableMount); null when there is none, or when the kernel does not detach
   * another namespace's mounts on unlink. A host without it: null.
   */
  detachableMount?(dir: string, names: string[]): Promise<string | null>;
  /** Which of these netns files (real paths) a running process still has as its network namespace. */
  netnsInUse(paths: string[]): Promise<Set<string>>;
  /**
   * The processes running in cni-sweep's own network namespace (a CNI's node agent uses the host
   * network). Always the machine's /proc, whatever the root: processes are not files under it.
   */
  processes(): Promise<ProcessInfo[]>;
  isRoot(): boolean;
  hostname(): string;
  /**
   * Takes the run lock (a pid file at a node path). Resolves to a release function; rejects with
   * RefusedError naming the holder when a live process holds it. A lock left by a dead process is taken over.
   */
  lock(nodePath: string): Promise<() => Promise<void>>;
  /** Forgets answers read so far: the node may have changed since (a prompt waited for its answer). */
  refresh?(): void;
  /**
   * What of these removals (real paths; `tree`: rm -rf, everything below goes too) the kernel would
   * refuse, asked without changing anything: a read-only mount, an immutable file or directory, a
   * directory the caller may not write, a mount below a tree. `unmounted`: the plan unmounts it
   * first (a pod netns file), so only its directory counts. Empty when all can go.
   */
  unremovable?(targets: RemovalTarget[]): Promise<Array<{ path: string; reason: string }>>;
  /** The members of a tar archive (a real path: a backup's files.tar), read without extracting anything. */
  tarMembers?(archive: string): Promise<TarMember[]>;
  /** Writes cni-sweep's own bookkeeping (journal), atomically. */
  writeState(nodePath: string, content: string): Promise<void>;
}

/**
 * The read of every namespace file's id in `dir` (a real path): `ip -j netns list` lists
 * /var/run/netns with each file's id (RTM_GETNSID, a read), pointed at `dir` in a private mount
 * namespace that ends with it. The netns phase emits it and the fake host answers exactly it.
 */
export const netnsIdsArgv = (dir: string): string[] => [
  'unshare',
  '--mount',
  '--propagation',
  'private',
  '--',
  'sh',
  '-c',
  'mount --rbind -- "$1" /var/run/netns && exec ip -j netns list',
  'sh',
  dir,
];

/** An iptables save or restore tool of any backend and family: [1] the backend ("ip6tables-legacy"), [2] save|restore. */
export const XTABLES_TOOL = /^(ip6?tables(?:-nft|-legacy)?)-(save|restore)$/;

/**
 * Maps a node path ("/etc/cni/net.d") to the path under root. Rejects any ".." component, looked
 * for before normalising ("/a/../../etc" normalises to "/etc", which no longer shows it), and NUL,
 * so no profile or config can point a removal outside its place.
 */
export function underRoot(root: string, nodePath: string): string {
  if (!nodePath.startsWith('/')) throw new UsageError(`not an absolute path: ${nodePath}`);
  if (nodePath.split('/').includes('..') || nodePath.includes('\0'))
    throw new UsageError(`path escapes the root: ${JSON.stringify(nodePath)}`);
  // Most paths are already in normal form (called thousands of times at hundreds of pods).
  const normal = inNormalForm(nodePath) ? nodePath : path.posix.normalize(nodePath);
  if (root === '/') return normal;
  return inNormalForm(root) && normal !== '/' ? root + normal : path.posix.join(root, normal);
}

/** An absolute path path.posix.normalize leaves as it is: no empty, "." or ".." component, no trailing "/". */
const inNormalForm = (p: string) => p.startsWith('/') && !/\/\/|\/\.\.?(?:\/|$)/.test(p) && (p === '/' || !p.endsWith('/'));

/**
 * Whether a removal target stays in a profile's own locations: the path is already in normal form
 * (no "", ".", ".." component, no trailing slash), and it is one of the locations owned outright or
 * a direct child of a directory whose entries are the CNI's (one network's IPAM directory, one
 * result cache). A location's parent, or the root, is never a target.
 */
export function insideLocations(nodePath: string, owned: readonly string[], parents: readonly string[]): boolean {
  if (!nodePath.startsWith('/') || nodePath.includes('\0')) return false;
  const parts = nodePath.split('/').slice(1);
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return false;
  if ([...owned, ...parents].some((l) => l === nodePath || l.startsWith(nodePath + '/')) && !owned.includes(nodePath)) return false;
  if (owned.includes(nodePath)) return true;
  return parents.includes(path.posix.dirname(nodePath));
}
