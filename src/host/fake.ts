// An in-memory node for unit tests. It answers only the reads cni-sweep issues and understands only
// the writes it emits, changing its model the way the kernel and the tools would. Anything else
// throws: a fake that guessed would hide a phase emitting a command that does something else on a
// real node, and it never falls through to the machine running the tests.
//
// The class holds the state and dispatches; the families it models are in ./fake/: the model and
// shared helpers (model.ts), `ip -batch` changes (ip.ts), iptables-restore (iptables.ts).

import { createHash } from 'node:crypto';
import path from 'node:path';
import { CommandFailedError, RefusedError, UsageError } from '../errors.js';
import { parseIptablesSave, type IptDump } from '../parse/iptables.js';
import type { DirEntry, EntryType, ExecResult, Host, ProcessInfo, Step } from './host.js';
import { underRoot, XTABLES_TOOL } from './host.js';
import type { TarMember } from '../backup/tar.js';
import { ovsCommand, ovsQuery, type OvsModel } from './fake-ovs.js';
import { bpfCommand, bpfIpLine, bpfQuery } from './fake-bpf.js';
import { rulesQuery } from './fake/rules.js';
import { fakeMv } from './fake-mv.js';
import { deleteLink, ipBatchLine } from './fake/ip.js';
import { iptablesRestore } from './fake/iptables.js';
import {
  clean,
  DEFAULT_BINS,
  fail,
  familyOf,
  OK,
  type FakeAddr,
  type FakeHostInit,
  type FakeLink,
  type FakePod,
  type FakeRoute,
  type Failure,
  type FsNode,
  type Outcome,
} from './fake/model.js';

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
  /** Running processes; those with otherNetns run in another network namespace than cni-sweep. */
  procs: Array<ProcessInfo & { otherNetns?: boolean }> = [];
  units = new Map<string, string>();
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
    this.mkdirReal(clean(this.root), 0o755);
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
    const dump = this.iptables.get(backend);
    if (!dump?.tables.length) return '';
    const out: string[] = [];
    for (const t of dump.tables) {
      out.push(`# Generated by ${backend}-save v1.8.9${backend.includes('-nft') ? ' (nf_tables)' : ''}`, `*${t.name}`);
      for (const c of t.chains) out.push(`:${c.name} ${c.policy ?? '-'} [0:0]`);
      // iptables-save groups rules by chain, in chain order.
      for (const c of t.chains) for (const r of t.rules) if (r.chain === c.name) out.push(`-A ${r.chain}${r.spec ? ` ${r.spec}` : ''}`);
      out.push('COMMIT', '# Completed');
    }
    return out.join('\n') + '\n';
  }

  addNftTable(family: string, name: string): this {
    this.nftTables.push({ family, name });
    return this;
  }

  mkdir(nodePath: string, mode = 0o755): this {
    this.mkdirReal(this.realPath(nodePath), mode);
    return this;
  }

  writeFile(nodePath: string, content: string, mode = 0o644): this {
    const p = this.realPath(nodePath);
    this.mkdirReal(path.posix.dirname(p), 0o755);
    this.fs.set(p, { type: 'file', content, mode });
    return this;
  }

  symlink(nodePath: string, target: string): this {
    const p = this.realPath(nodePath);
    this.mkdirReal(path.posix.dirname(p), 0o755);
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
    const n = this.fs.get(clean(real));
    return n?.type === 'file' ? n.content : undefined;
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
    const a = argv.join(' ');
    const ok = (stdout: string, code = 0): ExecResult => ({ code, stdout, stderr: '' });
    const bin = argv[0] ?? '';
    const known = (): ExecResult | null | undefined => {
      const bpf = bpfQuery(this, argv);
      if (bpf) return bpf;
      const rules = rulesQuery(this, argv);
      if (rules) return rules;
      if (a === 'ip -j -d link show') return ok(this.linksJson());
      const route = /^ip -j -([46]) route show table main$/.exec(a);
      if (route) return ok(this.routesJson(Number(route[1]) as 4 | 6));
      const tool = XTABLES_TOOL.exec(bin);
      if (tool && tool[2] === 'save' && argv.length === 1) return ok(this.iptablesSave(tool[1]!));
      if (a === 'nft -j list tables') {
        const items = this.nftTables.map((t, i) => ({ table: { family: t.family, name: t.name, handle: i + 1 } }));
        return ok(
          JSON.stringify({
            nftables: [{ metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } }, ...items],
          }) + '\n',
        );
      }
      const table = /^nft list table (\S+) (\S+)$/.exec(a);
      if (table) {
        const present = this.nftTables.some((t) => t.family === table[1] && t.name === table[2]);
        return present
          ? ok(`table ${table[1]!} ${table[2]!} {\n}\n`)
          : {
              code: 1,
              stdout: '',
              stderr: `Error: No such file or directory; did you mean table ‘${table[2]!}’ in family ${table[1]!}?\nlist table ${table[1]!} ${table[2]!}\n`,
            };
      }
      const addr = /^ip -j addr show dev (\S+)$/.exec(a);
      if (addr) {
        const l = this.link(addr[1]!);
        if (!l) return { code: 1, stdout: '', stderr: `Device "${addr[1]!}" does not exist.\n` };
        return ok(
          JSON.stringify([{ ifindex: l.ifindex, ifname: l.ifname, flags: l.flags ?? [], addr_info: this.addrs.get(l.ifname) ?? [] }]) +
            '\n',
        );
      }
      if (a === 'ip -j -d addr show' || a === 'ip -d -j addr show') {
        return ok(
          JSON.stringify(
            this.links.map((l) => ({
              ifindex: l.ifindex,
              ifname: l.ifname,
              flags: l.flags ?? [],
              mtu: l.mtu,
              addr_info: this.addrs.get(l.ifname) ?? [],
            })),
          ) + '\n',
        );
      }
      const kube = /^kubectl --kubeconfig \S+ get (?:node (\S+)|(networkpolicies) -A) -o json$/.exec(a);
      if (kube?.[1] !== undefined) {
        const node = this.kubeNodes.get(kube[1]);
        if (node === undefined) return { code: 1, stdout: '', stderr: `Error from server (NotFound): nodes "${kube[1]}" not found\n` };
        return ok(JSON.stringify(node) + '\n');
      }
      if (kube?.[2]) {
        const items = this.networkPolicies.map((p) => ({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: p.name, namespace: p.namespace },
          spec: { podSelector: {} },
        }));
        return ok(JSON.stringify({ apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } }) + '\n');
      }
      if (a === 'ipset list -n') return ok(this.ipsets.map((x) => `${x}\n`).join(''));
      if (a === 'crictl pods -q') return ok(this.sandboxes.map((x) => `${x}\n`).join(''));
      if (a === 'crictl pods -o json') {
        const items = this.sandboxes.map((id) => {
          const p = this.pods.get(id) ?? {};
          return {
            id,
            metadata: { name: p.name ?? id, uid: `uid-${id}`, namespace: p.namespace ?? 'default', attempt: 0 },
            state: p.state ?? 'SANDBOX_READY',
          };
        });
        return ok(JSON.stringify({ items }, null, 2) + '\n');
      }
      const inspectp = /^crictl inspectp -o json (\S+)$/.exec(a);
      if (inspectp) {
        const id = inspectp[1]!;
        if (!this.sandboxes.includes(id))
          return { code: 1, stdout: '', stderr: `getting the pod sandbox status for "${id}": rpc error: code = NotFound\n` };
        const p = this.pods.get(id) ?? {};
        const status = {
          id,
          metadata: { name: p.name ?? id, uid: `uid-${id}`, namespace: p.namespace ?? 'default', attempt: 0 },
          state: p.state ?? 'SANDBOX_READY',
          network: { additionalIps: (p.additionalIps ?? []).map((ip) => ({ ip })), ip: p.ip ?? '' },
          linux: { namespaces: { options: { ipc: 'POD', network: p.hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER' } } },
        };
        const namespaces = [{ type: 'pid' }, { type: 'network', ...(p.hostNetwork ? {} : { path: p.netns ?? '' }) }];
        return ok(JSON.stringify({ status, info: { pid: 4242, runtimeSpec: { linux: { namespaces } } } }, null, 2) + '\n');
      }
      if (a === 'lsmod') {
        const rows = [...this.modules].map(([m, u]) => `${m.padEnd(24)}16384  ${u.refs}${u.users ? ` ${u.users}` : ''}`);
        return ok(['Module                  Size  Used by', ...rows, ''].join('\n'));
      }
      const ns = /^nsenter --net=(\S+) ip -j -d link show$/.exec(a);
      if (ns) {
        const inside = this.netnsLinks.get(ns[1]!);
        if (!inside) return { code: 1, stdout: '', stderr: `nsenter: reassociate to namespace 'ns/net' failed: Invalid argument\n` };
        return ok(JSON.stringify(inside) + '\n');
      }
      const ovs = ovsQuery(argv, this.ovs());
      if (ovs) return ovs;
      if (bin === 'systemctl' && argv[1] === 'is-active' && argv.length > 2) {
        const states = argv.slice(2).map((u) => this.units.get(u) ?? 'inactive');
        return ok(states.join('\n') + '\n', states.every((s) => s === 'active') ? 0 : 3);
      }
      return undefined;
    };
    const r = known();
    if (r === undefined) throw new Error(`FakeHost: unsupported query: ${a}`);
    if (!this.bins.has(bin)) return null;
    const fault = this.queryFaults.find((f) => f.match(argv));
    return fault ? { code: fault.failure.code ?? 1, stdout: '', stderr: fault.failure.stderr ?? '' } : r;
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
    const p = this.resolve(this.realPath(nodePath), true);
    const node = p === null ? undefined : this.fs.get(p);
    if (!node) return null;
    if (node.type !== 'file')
      throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${nodePath}'`), { code: 'EISDIR' });
    return node.content;
  }

  async readDir(nodePath: string): Promise<DirEntry[] | null> {
    this.denyUnreadable(nodePath, 'scandir');
    const p = this.resolve(this.realPath(nodePath), true);
    if (p === null || this.fs.get(p)?.type !== 'dir') return null;
    const out: DirEntry[] = [];
    for (const [k, n] of this.fs) if (k !== '/' && path.posix.dirname(k) === p) out.push({ name: path.posix.basename(k), type: n.type });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async entryType(nodePath: string): Promise<EntryType | null> {
    // lstat needs search permission on the directories above, not on the path itself.
    this.denyUnreadable(path.posix.dirname(nodePath), 'lstat');
    const p = this.resolve(this.realPath(nodePath), false);
    return p === null ? null : (this.fs.get(p)?.type ?? null);
  }

  async realEntryType(realPath: string): Promise<EntryType | null> {
    const p = this.resolve(clean(realPath), false);
    return p === null ? null : (this.fs.get(p)?.type ?? null);
  }

  async readLink(nodePath: string): Promise<string | null> {
    const p = this.resolve(this.realPath(nodePath), false);
    const node = p === null ? undefined : this.fs.get(p);
    return node?.type === 'symlink' ? node.target : null;
  }

  async mountPoints(): Promise<Set<string>> {
    return new Set(this.mounts);
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
    this.mkdirReal(path.posix.dirname(file), 0o755);
    this.fs.set(file, { type: 'file', content, mode: 0o600 });
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
    const bpf = bpfCommand(this, argv, stdin, unknown);
    if (bpf) return bpf;
    if (stdin !== undefined && !['ip -batch -', 'nft -f -', 'ipset restore'].includes(a) && !XTABLES_TOOL.test(argv[0] ?? ''))
      throw unknown('unexpected stdin');

    if (a === 'ip -batch -') {
      const ops = lines().map(
        (line) =>
          ipBatchLine(this, line) ??
          bpfIpLine(this, line) ??
          (() => {
            throw unknown(`unsupported ip -batch line "${line}"`);
          })(),
      );
      return () => {
        // ip stops at the first failing line; the lines before it stay applied.
        for (let i = 0; i < ops.length; i++) {
          const err = ops[i]!();
          if (err) return fail(1, `${err}\nCommand failed -:${i + 1}\n`);
        }
        return OK;
      };
    }

    const tool = XTABLES_TOOL.exec(argv[0] ?? '');
    if (tool && tool[2] === 'restore') {
      if (argv.length !== 3 || argv[1] !== '--noflush' || argv[2] !== '-w') throw unknown('restore without exactly --noflush -w');
      const input = lines();
      return () => {
        // The kernel refuses a rule that matches a set that does not exist, and the whole batch with it.
        for (let i = 0; i < input.length; i++) {
          const set = /--match-set (\S+)/.exec(input[i]!)?.[1];
          if (set !== undefined && !this.ipsets.includes(set))
            return fail(2, `${argv[0]!} v1.8.10 (nf_tables): Set ${set} doesn't exist.\n\nError occurred at line: ${i + 1}\n`);
        }
        return iptablesRestore(this.iptables, tool[1]!, argv[0]!, input, unknown);
      };
    }

    if (a === 'nft -f -') {
      const dels = lines().map((line) => {
        const m = /^delete table (\S+) (\S+)$/.exec(line);
        if (!m) throw unknown(`unsupported nft line "${line}"`);
        return { family: m[1], name: m[2], line };
      });
      return () => {
        // One nft -f is one transaction: all or nothing.
        const missing = dels.find((d) => !this.nftTables.some((t) => t.family === d.family && t.name === d.name));
        if (missing) return fail(1, `Error: Could not process rule: No such file or directory\n${missing.line}\n`);
        this.nftTables = this.nftTables.filter((t) => !dels.some((d) => d.family === t.family && d.name === t.name));
        return OK;
      };
    }
    if (argv[0] === 'nft' && argv[1] === '-f' && argv.length === 3) {
      // Loading a saved table back (restore).
      return () => {
        const text = this.fileAt(argv[2]!);
        if (text === undefined) return fail(1, `Error: Could not open file "${argv[2]!}": No such file or directory\n`);
        for (const m of text.matchAll(/^table (\S+) (\S+) \{$/gm)) {
          if (!this.nftTables.some((t) => t.family === m[1] && t.name === m[2])) this.nftTables.push({ family: m[1]!, name: m[2]! });
        }
        return OK;
      };
    }

    if (argv[0] === 'ipset' && argv[1] === 'restore' && argv[2] === '-file' && argv.length === 4) {
      // A set saved by `ipset save <name>` (restore): its create line and members.
      return () => {
        const text = this.fileAt(argv[3]!);
        if (text === undefined) return fail(1, `ipset v7.17: Cannot open ${argv[3]!} for reading: No such file or directory\n`);
        const input = text.split('\n').filter(Boolean);
        for (let i = 0; i < input.length; i++) {
          const m = /^(create|add) (\S+)( |$)/.exec(input[i]!);
          if (!m) throw unknown(`unsupported ipset line "${input[i]!}"`);
          const exists = this.ipsets.includes(m[2]!);
          if (m[1] === 'create' && exists)
            return fail(1, `ipset v7.17: Error in line ${i + 1}: Set cannot be created: set with the same name already exists\n`);
          if (m[1] === 'add' && !exists)
            return fail(1, `ipset v7.17: Error in line ${i + 1}: The set with the given name does not exist\n`);
          if (m[1] === 'create') this.ipsets.push(m[2]!);
        }
        return OK;
      };
    }
    if (a === 'ipset restore') {
      const names = lines().map((line) => {
        const m = /^destroy (\S+)$/.exec(line);
        if (!m) throw unknown(`unsupported ipset line "${line}"`);
        return m[1];
      });
      return () => {
        // ipset restore goes line by line and stops at the first error.
        for (let i = 0; i < names.length; i++) {
          const err = !this.ipsets.includes(names[i]!)
            ? 'The set with the given name does not exist'
            : this.ipsetInUse(names[i]!)
              ? 'Set cannot be destroyed: it is in use by a kernel component'
              : null;
          if (err) return fail(1, `ipset v7.17: Error in line ${i + 1}: ${err}\n`);
          this.ipsets = this.ipsets.filter((x) => x !== names[i]);
        }
        return OK;
      };
    }

    if (argv[0] === 'rm' && (argv[1] === '-f' || argv[1] === '-rf') && argv[2] === '--' && argv.length > 3) {
      const targets = argv.slice(3).map((p) => {
        // cni-sweep never removes anything outside the root: that is a bug, not a failed command.
        if (!this.underRootReal(p)) throw new Error(`FakeHost: ${p} is outside the root ${this.root}`);
        return clean(p);
      });
      return () => this.rm(targets, argv[1] === '-rf');
    }

    if (argv[0] === 'umount' && argv[1] === '--lazy' && argv[2] === '--' && argv.length > 3) {
      return () => {
        const errs: string[] = [];
        for (const p of argv.slice(3)) if (!this.mounts.delete(p)) errs.push(`umount: ${p}: not mounted.`);
        return errs.length ? fail(32, errs.join('\n') + '\n') : OK;
      };
    }

    if (a.startsWith('mkdir -p -m 0700 -- ') && argv.length > 5) {
      return () => {
        for (const d of argv.slice(5))
          if (this.mkdirReal(clean(d), 0o700) === null) return fail(1, `mkdir: cannot create directory '${d}': Not a directory\n`);
        return OK;
      };
    }

    if (argv[0] === 'tar' && argv[1] === '-C' && argv[2] && argv[3] === '-cpf' && argv[4] && argv[5] === '--' && argv.length > 6) {
      return () => this.tarCreate(clean(argv[2]!), clean(argv[4]!), argv.slice(6));
    }
    if (
      argv[0] === 'tar' &&
      argv[1] === '-C' &&
      argv[2] &&
      argv[3] === '-xpf' &&
      argv[4] &&
      argv[5] === '--skip-old-files' &&
      (argv.length === 6 || (argv[6] === '--' && argv.length > 7))
    ) {
      return () => this.tarExtract(clean(argv[2]!), clean(argv[4]!), argv.slice(7));
    }

    if (argv[0] === 'systemctl' && (argv[1] === 'stop' || argv[1] === 'start') && argv.length > 2) {
      const units = argv.slice(2);
      return () => {
        const unknownUnit = units.find((u) => !this.units.has(u));
        if (unknownUnit) return fail(5, `Failed to ${argv[1]!} ${unknownUnit}: Unit ${unknownUnit} not found.\n`);
        for (const u of units) this.units.set(u, argv[1] === 'stop' ? 'inactive' : 'active');
        return OK;
      };
    }

    if (argv[0] === 'crictl' && (argv[1] === 'stopp' || argv[1] === 'rmp') && argv.length > 2) {
      return () => {
        const missing = argv.slice(2).find((id) => !this.sandboxes.includes(id));
        if (missing) return fail(1, `getting sandbox status of pod "${missing}": rpc error: code = NotFound\n`);
        if (argv[1] === 'rmp') this.sandboxes = this.sandboxes.filter((id) => !argv.includes(id));
        return OK;
      };
    }

    if (argv[0] === 'modprobe' && argv[1] === '-r' && argv.length > 2) {
      return () => {
        for (const m of argv.slice(2)) {
          const mod = this.modules.get(m);
          if (!mod) return fail(1, `modprobe: FATAL: Module ${m} is not currently loaded.\n`);
          if (mod.refs > 0) return fail(1, `modprobe: FATAL: Module ${m} is in use.\n`);
          this.modules.delete(m);
          // The module's own devices (tunl0 of ipip) go with it.
          for (const l of this.links.filter((x) => x.linkinfo?.info_kind === m)) deleteLink(this, l.ifname);
        }
        return OK;
      };
    }

    if (argv[0] === 'kubectl' && argv[1] === '--kubeconfig' && argv[2] && (argv[3] === 'drain' || argv[3] === 'uncordon') && argv[4]) {
      return () => {
        if (argv[3] === 'drain') this.cordoned.add(argv[4]!);
        else this.cordoned.delete(argv[4]!);
        return OK;
      };
    }

    const ovs = ovsCommand(argv, this.ovs());
    if (ovs) return ovs;
    const mv = fakeMv(this.fs, this.root, argv);
    if (mv) return mv;

    throw unknown();
  }

  /** Open vSwitch's datapaths over this node's links (fake-ovs.ts). */
  private ovs(): OvsModel {
    return { links: () => this.links, deleteLink: (name) => deleteLink(this, name) };
  }

  /** The output of a command whose stdout the backup saves to a file; undefined when not one of those. */
  private savedOutput(argv: string[], stdin: string | undefined, cwd: string | undefined): (() => Outcome) | undefined {
    const a = argv.join(' ');
    const out = (stdout: string): Outcome => ({ code: 0, stdout });
    if (stdin !== undefined) return a === 'cat' ? () => out(stdin) : undefined;
    const tool = XTABLES_TOOL.exec(argv[0] ?? '');
    if (tool && tool[2] === 'save' && argv.length === 1) return () => out(this.iptablesSave(tool[1]!));
    if (argv[0] === 'ipset' && argv[1] === 'save' && argv.length === 3) {
      // The fake keeps set names only: a set comes back empty, of the type Calico and kube-router use most.
      return () =>
        this.ipsets.includes(argv[2]!)
          ? out(`create ${argv[2]!} hash:net family ${argv[2]!.startsWith('inet6:') ? 'inet6' : 'inet'} hashsize 1024 maxelem 65536\n`)
          : fail(1, 'ipset v7.17: The set with the given name does not exist\n');
    }
    if (a === 'nft list ruleset') return () => out(this.nftTables.map((t) => `table ${t.family} ${t.name} {\n}\n`).join(''));
    if (argv[0] === 'nft' && argv[1] === 'list' && argv[2] === 'table' && argv.length === 5) {
      return () =>
        this.nftTables.some((t) => t.family === argv[3] && t.name === argv[4])
          ? out(`table ${argv[3]!} ${argv[4]!} {\n}\n`)
          : fail(1, 'Error: No such file or directory\n');
    }
    if (a === 'ip -d -j link show') return () => out(this.linksJson());
    if (a === 'ip -d -j addr show') {
      return () =>
        out(
          JSON.stringify(this.links.map((l) => ({ ifindex: l.ifindex, ifname: l.ifname, addr_info: this.addrs.get(l.ifname) ?? [] }))) +
            '\n',
        );
    }
    const routes = /^ip -d -j -([46]) route show table all$/.exec(a);
    if (routes) return () => out(this.routesJson(Number(routes[1]) as 4 | 6));
    if (argv[0] === 'sha256sum' && argv[1] === '--' && argv.length > 2 && cwd !== undefined) {
      return () => {
        const lines: string[] = [];
        for (const rel of argv.slice(2)) {
          const content = this.fileAt(path.posix.resolve(cwd, rel));
          if (content === undefined) return fail(1, `sha256sum: ${rel}: No such file or directory\n`);
          lines.push(`${createHash('sha256').update(content).digest('hex')}  ${rel}`);
        }
        return out(lines.join('\n') + '\n');
      };
    }
    return undefined;
  }

  private linksJson(): string {
    return JSON.stringify(this.links) + '\n';
  }

  private routesJson(family: 4 | 6): string {
    return JSON.stringify(this.routes[family]) + '\n';
  }

  private underRootReal(real: string): boolean {
    const root = clean(this.root);
    const p = clean(real);
    return root === '/' ? p.startsWith('/') : p === root || p.startsWith(`${root}/`);
  }

  /** Creates a directory and its parents; null when a component exists and is not a directory. */
  private mkdirReal(real: string, mode: number): string | null {
    const parts = real.split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      cur = path.posix.join(cur, parts[i]!);
      const n = this.fs.get(cur);
      if (!n) this.fs.set(cur, { type: 'dir', mode: i === parts.length - 1 ? mode : 0o755 });
      else if (n.type !== 'dir') return null;
    }
    return cur;
  }

  /** Follows symlinks like path resolution does; the final component only when asked. */
  private resolve(real: string, followLast: boolean): string | null {
    let parts = clean(real).split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0, hops = 0; i < parts.length; i++) {
      const next = path.posix.join(cur, parts[i]!);
      const node = this.fs.get(next);
      const last = i === parts.length - 1;
      if (node?.type === 'symlink' && (!last || followLast)) {
        if (++hops > 40) return null;
        parts = [...path.posix.resolve(cur, node.target).split('/').filter(Boolean), ...parts.slice(i + 1)];
        cur = '/';
        i = -1;
        continue;
      }
      if (!last && node?.type !== 'dir') return null;
      cur = next;
    }
    return cur;
  }

  private ipsetInUse(name: string): boolean {
    for (const d of this.iptables.values()) {
      for (const t of d.tables)
        for (const r of t.rules) if (r.tokens.some((tok, i) => tok === name && r.tokens[i - 1] === '--match-set')) return true;
    }
    return false;
  }

  private rm(targets: string[], recursive: boolean): Outcome {
    const errs: string[] = [];
    for (const t of targets) {
      // rm resolves the directories above a path but never the path itself.
      const p = this.resolve(t, false);
      const node = p === null ? undefined : this.fs.get(p);
      if (!node || p === null) continue; // -f: a missing path is fine
      if (node.type === 'dir' && !recursive) {
        errs.push(`rm: cannot remove '${t}': Is a directory`);
        continue;
      }
      const doomed = [...this.fs.keys()].filter((k) => k === p || k.startsWith(`${p}/`));
      if (doomed.some((k) => this.mounts.has(k))) {
        errs.push(`rm: cannot remove '${t}': Device or resource busy`);
        continue;
      }
      for (const k of doomed) this.fs.delete(k);
    }
    return errs.length ? fail(1, errs.join('\n') + '\n') : OK;
  }

  /** A stand-in for a tar archive: the members and their contents as JSON (symlinks kept as links). */
  private tarCreate(dir: string, archive: string, members: string[]): Outcome {
    const entries: Array<{ path: string } & FsNode> = [];
    const errs: string[] = [];
    for (const m of members) {
      const top = clean(path.posix.join(dir, m));
      if (!this.fs.has(top)) {
        errs.push(`tar: ${m}: Cannot stat: No such file or directory`);
        continue;
      }
      for (const [k, n] of this.fs) if (k === top || k.startsWith(`${top}/`)) entries.push({ path: path.posix.relative(dir, k), ...n });
    }
    if (this.fs.get(path.posix.dirname(archive))?.type !== 'dir')
      return fail(2, `tar: ${archive}: Cannot open: No such file or directory\n`);
    this.fs.set(archive, { type: 'file', content: JSON.stringify({ fakeTar: 1, entries }), mode: 0o644 });
    return errs.length ? fail(2, `${errs.join('\n')}\ntar: Exiting with failure status due to previous errors\n`) : OK;
  }

  async tarMembers(archive: string): Promise<TarMember[]> {
    const text = this.fileAt(clean(archive));
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${archive}'`), { code: 'ENOENT' });
    const { entries } = JSON.parse(text) as { entries: Array<{ path: string } & FsNode> };
    return entries.map(({ path: name, ...n }) =>
      n.type === 'file'
        ? { name, type: 'file', size: Buffer.byteLength(n.content), sha256: createHash('sha256').update(n.content).digest('hex') }
        : n.type === 'symlink'
          ? { name, type: 'symlink', size: 0, link: n.target }
          : { name, type: n.type === 'dir' ? 'dir' : 'other', size: 0 },
    );
  }

  /** GNU tar -x: every member, or only the named ones and what is below them. */
  private tarExtract(dir: string, archive: string, only: string[] = []): Outcome {
    const text = this.fileAt(archive);
    if (text === undefined) return fail(2, `tar: ${archive}: Cannot open: No such file or directory\n`);
    const { entries } = JSON.parse(text) as { entries: Array<{ path: string } & FsNode> };
    const named = (rel: string) => !only.length || only.some((m) => rel.replace(/\/+$/, '') === m || rel.startsWith(`${m}/`));
    for (const { path: rel, ...node } of entries) {
      if (!named(rel)) continue;
      const to = clean(path.posix.join(dir, rel));
      if (this.fs.has(to)) continue; // --skip-old-files
      this.mkdirReal(path.posix.dirname(to), 0o755);
      this.fs.set(to, node);
    }
    return OK;
  }

  /** iptables-restore --noflush: each table commits atomically at COMMIT; the first failing table stops the run. */
}

/** crictl aimed at a distribution's socket answers as crictl at the default one: the fake node has one runtime. */
function withoutEndpoint(argv: string[]): string[] {
  return argv[0] === 'crictl' && argv[1] === '--runtime-endpoint' ? ['crictl', ...argv.slice(3)] : argv;
}
