// An in-memory node for unit tests. It answers only the reads cni-sweep issues and understands only
// the writes it emits, changing its model the way the kernel and the tools would. Anything else
// throws: a fake that guessed would hide a phase emitting a command that does something else on a
// real node, and it never falls through to the machine running the tests.
//
// This class holds the node's state, the Host methods and the dispatch of each read and write, by
// its tool (argv[0]), to the family that models that tool, in ./fake/: each file there holds its
// tool's argv grammar and semantics and returns undefined for a form it does not know, which the
// dispatch turns into an error. model.ts has the types and shared helpers; fs.ts the filesystem
// (rm, mkdir, umount, mv, cat, sha256sum), tar.ts, ip.ts (and nsenter), iptables.ts, ipset.ts, nft.ts,
// modules.ts (lsmod, modprobe), services.ts (systemctl), crictl.ts, kubectl.ts, ovs.ts (ovs-dpctl),
// bpf.ts (tc, findmnt, XDP lines of ip -batch).

import path from 'node:path';
import type { TarMember } from '../backup/tar.js';
import { CommandFailedError, RefusedError, UsageError } from '../errors.js';
import { parseIptablesSave, type IptDump } from '../parse/iptables.js';
import type { DirEntry, EntryType, ExecResult, Host, ProcessInfo, Step } from './host.js';
import { underRoot, XTABLES_TOOL } from './host.js';
import { bpfCommand, bpfQuery } from './fake/bpf.js';
import { crictlCommand, crictlQuery, withoutEndpoint } from './fake/crictl.js';
import { catStdin, detachCommand, fileContent, fsCommand, mkdirAt, resolvePath, sha256sum } from './fake/fs.js';
import { rulesQuery } from './fake/rules.js';
import { deleteLink, ipCommand, ipQuery, ipSaved, nsenterQuery, netnsListQuery } from './fake/ip.js';
import { ipsetCommand, ipsetQuery, ipsetSaved } from './fake/ipset.js';
import { iptablesCommand, iptablesQuery, iptablesSaved, iptablesSaveText } from './fake/iptables.js';
import { kubectlCommand, kubectlQuery } from './fake/kubectl.js';
import {
  clean,
  DEFAULT_BINS,
  familyOf,
  type FakeAddr,
  type FakeHostInit,
  type FakeLink,
  type FakePod,
  type FakeRoute,
  type Failure,
  type FsNode,
  type Outcome,
} from './fake/model.js';
import { lsmodQuery, modprobeCommand } from './fake/modules.js';
import { nftCommand, nftQuery, nftSaved } from './fake/nft.js';
import { ovsCommand, ovsQuery, type OvsModel } from './fake/ovs.js';
import { systemctlCommand, systemctlQuery } from './fake/services.js';
import { tarCommand, tarMembers } from './fake/tar.js';

export { DEFAULT_BINS, type FakeAddr, type FakeHostInit, type FakeLink, type FakePod, type FakeRoute, type Failure, type FsNode };

export class FakeHost implements Host {
  readonly root: string;
  hostName: string;
  isRootUser: boolean;
  bins: Set<string>;

  links: FakeLink[] = [];
  addrs = new Map<string, FakeAddr[]>();
  routes: { 4: FakeRoute[]; 6: FakeRoute[] } = { 4: [], 6: [] };
  /** Parsed iptables state per backend id ("iptables-nft", "ip6tables-legacy", or plain "iptables"). */
  iptables = new Map<string, IptDump>();
  nftTables: Array<{ family: string; name: string }> = [];
  ipsets: string[] = [];
  /** Loaded kernel modules, with their reference counts and users as lsmod prints them. */
  modules = new Map<string, { refs: number; users?: string }>();
  /** Pod sandbox ids crictl lists. */
  sandboxes: string[] = [];
  /** What the CRI says of a sandbox (crictl pods -o json, inspectp -o json); a listed id without one is READY with no IP. */
  pods = new Map<string, FakePod>();
  /** Node objects `kubectl get node NAME -o json` returns, by name (a missing one is NotFound). */
  kubeNodes = new Map<string, unknown>();
  /** NetworkPolicy objects `kubectl get networkpolicies -A -o json` lists. */
  networkPolicies: Array<{ namespace: string; name: string }> = [];
  /** Links inside a pod network namespace, by the real path of its netns file. */
  netnsLinks = new Map<string, FakeLink[]>();
  /** Keyed by real path: everything under `root` is the node, anything else is outside it. */
  fs = new Map<string, FsNode>([['/', { type: 'dir', mode: 0o755 }]]);
  /** Real paths, as /proc/self/mountinfo shows them. */
  mounts = new Set<string>();
  /** Real paths of netns files a running process still uses. */
  netnsUsed = new Set<string>();
  /**
   * The mount point (real path) of the mount holding /run/netns that detachableMount answers (a
   * tmpfs /run, or the directory's self-bind mount); null: the directory is on the root mount.
   */
  netnsDirMount: string | null = null;
  /** Running processes; those with otherNetns run in another network namespace than cni-sweep. */
  procs: Array<ProcessInfo & { otherNetns?: boolean }> = [];
  units = new Map<string, string>();
  /** KillMode of units that set one (containerd.service: process); others have systemd's default. */
  killModes = new Map<string, string>();
  /** Nodes cordoned through kubectl drain and not uncordoned since. */
  cordoned = new Set<string>();
  /** Lock files (real paths) and the pid holding each. */
  locks = new Map<string, number>();
  /** False stands for a read-only root: writeState fails the way RealHost reports it. */
  writable = true;
  /** Node paths a non-root reader may not read (EACCES), at and below each. */
  unreadable = new Set<string>();

  readonly calls: Step[] = [];
  readonly queries: string[][] = [];
  private faults: Array<{ match: (step: Step) => boolean; failure: Failure }> = [];
  private queryFaults: Array<{ match: (argv: string[]) => boolean; failure: Failure }> = [];
  private nextIndex = 1;

  constructor(init: FakeHostInit = {}) {
    this.root = init.root ?? '/';
    this.hostName = init.hostname ?? 'node-1';
    this.isRootUser = init.isRoot ?? true;
    this.bins = new Set(init.bins ?? DEFAULT_BINS);
    mkdirAt(this.fs, clean(this.root), 0o755);
  }

  // ---- building the node --------------------------------------------------------------------

  addLink(link: Partial<FakeLink> & { ifname: string }): this {
    if (this.link(link.ifname)) throw new Error(`FakeHost: link ${link.ifname} exists`);
    const ifindex = link.ifindex ?? this.nextIndex;
    this.nextIndex = Math.max(this.nextIndex, ifindex) + 1;
    this.links.push({ flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', ...link, ifindex });
    return this;
  }

  addAddr(ifname: string, cidr: string): this {
    const [local, len] = cidr.split('/');
    const list = this.addrs.get(ifname) ?? [];
    list.push({ family: familyOf(local!) === 4 ? 'inet' : 'inet6', local: local!, prefixlen: Number(len) });
    this.addrs.set(ifname, list);
    return this;
  }

  addRoute(family: 4 | 6, route: FakeRoute): this {
    this.routes[family].push({ flags: [], ...route });
    return this;
  }

  setIptables(backend: string, saveText: string): this {
    this.iptables.set(backend, parseIptablesSave(saveText));
    return this;
  }

  /** What `<backend>-save` prints now. */
  iptablesSave(backend: string): string {
    return iptablesSaveText(this.iptables.get(backend), backend);
  }

  addNftTable(family: string, name: string): this {
    this.nftTables.push({ family, name });
    return this;
  }

  mkdir(nodePath: string, mode = 0o755): this {
    mkdirAt(this.fs, this.realPath(nodePath), mode);
    return this;
  }

  writeFile(nodePath: string, content: string, mode = 0o644): this {
    const p = this.realPath(nodePath);
    mkdirAt(this.fs, path.posix.dirname(p), 0o755);
    this.fs.set(p, { type: 'file', content, mode });
    return this;
  }

  symlink(nodePath: string, target: string): this {
    const p = this.realPath(nodePath);
    mkdirAt(this.fs, path.posix.dirname(p), 0o755);
    this.fs.set(p, { type: 'symlink', target });
    return this;
  }

  /** A pod netns file under /run/netns, bind-mounted as `ip netns add` leaves it unless told otherwise. */
  addNetns(name: string, opts: { mounted?: boolean; inUse?: boolean } = {}): this {
    const p = `/run/netns/${name}`;
    this.writeFile(p, '', 0o444);
    if (opts.mounted ?? true) this.mounts.add(this.realPath(p));
    if (opts.inUse) this.netnsUsed.add(this.realPath(p));
    return this;
  }

  /** A running process: argv as its command line shows it; comm defaults to argv[0]'s base name. */
  addProcess(argv: string[], opts: { pid?: number; comm?: string; otherNetns?: boolean } = {}): this {
    const pid = opts.pid ?? 1000 + this.procs.length;
    this.procs.push({ pid, comm: opts.comm ?? path.posix.basename(argv[0] ?? '').slice(0, 15), argv, otherNetns: opts.otherNetns });
    return this;
  }

  removeBinary(...names: string[]): this {
    for (const n of names) this.bins.delete(n);
    return this;
  }

  /** Makes every later apply() matching `match` fail, leaving the model unchanged. */
  failOn(match: (step: Step) => boolean, failure: Failure = {}): this {
    this.faults.push({ match, failure });
    return this;
  }

  /** Makes every later query() matching `match` exit non-zero, as a tool does without root. */
  failQuery(match: (argv: string[]) => boolean, failure: Failure = {}): this {
    this.queryFaults.push({ match, failure });
    return this;
  }

  // ---- inspecting the model (for assertions) -----------------------------------------------

  link(name: string): FakeLink | undefined {
    return this.links.find((l) => l.ifname === name);
  }

  linkNames(): string[] {
    return this.links.map((l) => l.ifname);
  }

  realPath(nodePath: string): string {
    return clean(underRoot(this.root, nodePath));
  }

  /** Node paths of everything under the root, sorted; dirs end in "/", symlinks show their target. */
  paths(): string[] {
    const root = clean(this.root);
    const out: string[] = [];
    for (const [p, n] of this.fs) {
      const rel = root === '/' ? p : p.startsWith(`${root}/`) ? p.slice(root.length) : null;
      if (rel === null || rel === '/') continue;
      out.push(n.type === 'dir' ? `${rel}/` : n.type === 'symlink' ? `${rel} -> ${n.target}` : rel);
    }
    return out.sort();
  }

  exists(nodePath: string): boolean {
    return this.fs.has(this.realPath(nodePath));
  }

  /** Content of a file by real path (backups may live outside the root). */
  fileAt(real: string): string | undefined {
    return fileContent(this.fs, real);
  }

  chains(backend: string, table: string): string[] {
    return (
      this.iptables
        .get(backend)
        ?.tables.find((t) => t.name === table)
        ?.chains.map((c) => c.name) ?? []
    );
  }

  /** Every "-A CHAIN spec" line of a backend's table, in the order the table holds them. */
  rules(backend: string, table: string): string[] {
    return (
      this.iptables
        .get(backend)
        ?.tables.find((t) => t.name === table)
        ?.rules.map((r) => `-A ${r.chain} ${r.spec}`) ?? []
    );
  }

  /** Pretends another live process holds a lock (a node path). */
  holdLock(nodePath: string, pid: number): this {
    this.locks.set(this.realPath(nodePath), pid);
    return this;
  }

  // ---- Host: reads ----------------------------------------------------------------------------

  async query(given: string[]): Promise<ExecResult | null> {
    this.queries.push([...given]);
    const argv = withoutEndpoint(given);
    const r = this.answer(argv);
    if (r === undefined) throw new Error(`FakeHost: unsupported query: ${argv.join(' ')}`);
    if (!this.bins.has(argv[0] ?? '')) return null;
    const fault = this.queryFaults.find((f) => f.match(argv));
    return fault ? { code: fault.failure.code ?? 1, stdout: '', stderr: fault.failure.stderr ?? '' } : r;
  }

  /** What a read prints, by the family of its tool; undefined for a read the fake does not model. */
  private answer(argv: string[]): ExecResult | undefined {
    switch (argv[0]) {
      case 'ip':
        return rulesQuery(this, argv) ?? ipQuery(this, argv);
      case 'nsenter':
        return nsenterQuery(this.netnsLinks, argv);
      case 'unshare':
        return netnsListQuery(this, argv);
      case 'tc':
      case 'findmnt':
        return bpfQuery(this, argv);
      case 'nft':
        return nftQuery(this, argv);
      case 'ipset':
        return ipsetQuery(this, argv);
      case 'lsmod':
        return lsmodQuery(this, argv);
      case 'ovs-dpctl':
        return ovsQuery(argv, this.ovs());
      case 'systemctl':
        return systemctlQuery(this, argv);
      case 'crictl':
        return crictlQuery(this, argv);
      case 'kubectl':
        return kubectlQuery(this, argv);
      default:
        return iptablesQuery(this, argv);
    }
  }

  async has(bin: string): Promise<boolean> {
    return this.bins.has(bin);
  }

  private denyUnreadable(nodePath: string, op: string): void {
    for (const u of this.unreadable) {
      if (nodePath === u || nodePath.startsWith(`${u}/`))
        throw Object.assign(new Error(`EACCES: permission denied, ${op} '${this.realPath(nodePath)}'`), { code: 'EACCES' });
    }
  }

  async readFile(nodePath: string): Promise<string | null> {
    this.denyUnreadable(nodePath, 'open');
    const p = resolvePath(this.fs, this.realPath(nodePath), true, this.root);
    const node = p === null ? undefined : this.fs.get(p);
    if (!node) return null;
    if (node.type !== 'file')
      throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${nodePath}'`), { code: 'EISDIR' });
    return node.content;
  }

  async readDir(nodePath: string): Promise<DirEntry[] | null> {
    this.denyUnreadable(nodePath, 'scandir');
    const p = resolvePath(this.fs, this.realPath(nodePath), true, this.root);
    if (p === null || this.fs.get(p)?.type !== 'dir') return null;
    const out: DirEntry[] = [];
    for (const [k, n] of this.fs) if (k !== '/' && path.posix.dirname(k) === p) out.push({ name: path.posix.basename(k), type: n.type });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async entryType(nodePath: string): Promise<EntryType | null> {
    // lstat needs search permission on the directories above, not on the path itself.
    this.denyUnreadable(path.posix.dirname(nodePath), 'lstat');
    const p = resolvePath(this.fs, this.realPath(nodePath), false, this.root);
    return p === null ? null : (this.fs.get(p)?.type ?? null);
  }

  async realEntryType(realPath: string): Promise<EntryType | null> {
    const p = resolvePath(this.fs, clean(realPath), false);
    return p === null ? null : (this.fs.get(p)?.type ?? null);
  }

  async readLink(nodePath: string): Promise<string | null> {
    const p = resolvePath(this.fs, this.realPath(nodePath), false, this.root);
    const node = p === null ? undefined : this.fs.get(p);
    return node?.type === 'symlink' ? node.target : null;
  }

  async mountPoints(): Promise<Set<string>> {
    return new Set(this.mounts);
  }

  async detachableMount(): Promise<string | null> {
    return this.netnsDirMount;
  }

  async netnsInUse(paths: string[]): Promise<Set<string>> {
    return new Set(paths.filter((p) => this.netnsUsed.has(p)));
  }

  async processes(): Promise<ProcessInfo[]> {
    return this.procs.filter((p) => !p.otherNetns).map(({ pid, comm, argv }) => ({ pid, comm, argv }));
  }

  isRoot(): boolean {
    return this.isRootUser;
  }

  hostname(): string {
    return this.hostName;
  }

  async lock(nodePath: string): Promise<() => Promise<void>> {
    const file = this.realPath(nodePath);
    const holder = this.locks.get(file);
    if (holder !== undefined)
      throw new RefusedError(
        `another cni-sweep run (pid ${holder}) holds ${file}`,
        'wait for it to finish; the lock is taken over automatically once that process is gone',
      );
    this.locks.set(file, process.pid);
    return async () => {
      if (this.locks.get(file) === process.pid) this.locks.delete(file);
    };
  }

  async writeState(nodePath: string, content: string): Promise<void> {
    const file = this.realPath(nodePath);
    if (!this.writable)
      throw new UsageError(
        `cannot write ${file}: read-only file system`,
        'cni-sweep needs a writable root for its lock, journal and backup',
      );
    mkdirAt(this.fs, path.posix.dirname(file), 0o755);
    this.fs.set(file, { type: 'file', content, mode: 0o600 });
  }

  async tarMembers(archive: string): Promise<TarMember[]> {
    return tarMembers(this.fs, archive);
  }

  // ---- Host: writes ---------------------------------------------------------------------------

  async apply(step: Step): Promise<ExecResult> {
    const rec: Step = { argv: [...step.argv] };
    for (const k of ['stdin', 'stdoutTo', 'cwd'] as const) if (step[k] !== undefined) rec[k] = step[k];
    this.calls.push(rec);
    const run = this.commandFor(step);
    if (!this.bins.has(step.argv[0] ?? '')) throw new CommandFailedError(step.argv, null, '', 'not found on PATH');
    const fault = this.faults.find((f) => f.match(step));
    if (fault)
      throw new CommandFailedError(step.argv, fault.failure.code ?? 1, fault.failure.stderr ?? `injected failure: ${step.argv.join(' ')}`);
    const r = run();
    if (r.code !== 0) throw new CommandFailedError(step.argv, r.code, r.stderr ?? '');
    if (step.stdoutTo !== undefined) {
      const to = clean(step.stdoutTo);
      if (this.fs.get(path.posix.dirname(to))?.type !== 'dir')
        throw Object.assign(new Error(`ENOENT: no such file or directory, open '${to}'`), { code: 'ENOENT' });
      this.fs.set(to, { type: 'file', content: r.stdout ?? '', mode: 0o600 });
    }
    return { code: 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Recognises a write and returns what running it does; throws on anything else. */
  private commandFor(step: Step): () => Outcome {
    const { stdin, stdoutTo, cwd } = step;
    const argv = withoutEndpoint(step.argv);
    const a = argv.join(' ');
    const unknown = (why = 'unsupported command') =>
      new Error(`FakeHost: ${why}: ${a}${stdin !== undefined ? ` <<< ${JSON.stringify(stdin)}` : ''}`);
    const lines = () => {
      if (stdin === undefined) throw unknown('missing stdin');
      return stdin
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
    };
    if (cwd !== undefined && argv[0] !== 'sha256sum') throw unknown('unexpected cwd');

    // Reads whose output the backup keeps: only meaningful with somewhere to put it.
    if (stdoutTo !== undefined) {
      const out = this.savedOutput(argv, stdin, cwd);
      if (!out) throw unknown('unsupported command with stdoutTo');
      return out;
    }
    // tc checks its own stdin (bpf.ts); every other tool takes stdin only in these forms.
    const bpf = bpfCommand(this, argv, stdin, unknown);
    if (bpf) return bpf;
    if (stdin !== undefined && !['ip -batch -', 'nft -f -', 'ipset restore'].includes(a) && !XTABLES_TOOL.test(argv[0] ?? ''))
      throw unknown('unexpected stdin');

    const run = this.change(argv, lines, unknown);
    if (!run) throw unknown();
    return run;
  }

  /** A change, by the family of its tool, as what running it does; undefined for one the fake does not model. */
  private change(argv: string[], lines: () => string[], unknown: (why: string) => Error): (() => Outcome) | undefined {
    switch (argv[0]) {
      case 'ip':
        return ipCommand(this, argv, lines, unknown);
      case 'nft':
        return nftCommand(this, argv, lines, unknown);
      case 'ipset':
        return ipsetCommand(this, argv, lines, unknown);
      case 'modprobe':
        return modprobeCommand(this, argv);
      case 'ovs-dpctl':
        return ovsCommand(argv, this.ovs());
      case 'unshare':
        return detachCommand(this, argv);
      case 'rm':
      case 'umount':
      case 'mkdir':
      case 'mv':
        return fsCommand(this, argv);
      case 'tar':
        return tarCommand(this.fs, argv);
      case 'systemctl':
        return systemctlCommand(this, argv);
      case 'crictl':
        return crictlCommand(this, argv);
      case 'kubectl':
        return kubectlCommand(this, argv);
      default:
        return iptablesCommand(this, argv, lines, unknown);
    }
  }

  /** Open vSwitch's datapaths over this node's links (fake/ovs.ts). */
  private ovs(): OvsModel {
    return { links: () => this.links, deleteLink: (name) => deleteLink(this, name) };
  }

  /** The output of a command whose stdout the backup saves to a file; undefined when not one of those. */
  private savedOutput(argv: string[], stdin: string | undefined, cwd: string | undefined): (() => Outcome) | undefined {
    if (stdin !== undefined) return catStdin(argv, stdin);
    switch (argv[0]) {
      case 'ip':
        return ipSaved(this, argv);
      case 'nft':
        return nftSaved(this, argv);
      case 'ipset':
        return ipsetSaved(this, argv);
      case 'sha256sum':
        return sha256sum(this, argv, cwd);
      default:
        return iptablesSaved(this, argv);
    }
  }
}
