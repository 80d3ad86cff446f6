// An in-memory node for unit tests. It answers only the reads cni-sweep issues and understands only
// the writes it emits, changing its model the way the kernel and the tools would. Anything else
// throws: a fake that guessed would hide a phase emitting a command that does something else on a
// real node, and it never falls through to the machine running the tests.
import path from 'node:path';
import { CommandFailedError } from '../errors.js';
import { parseIptablesSave, tokenize, type IptDump, type IptTable } from '../parse/iptables.js';
import type { DirEntry, EntryType, ExecResult, Host, Step } from './host.js';
import { underRoot } from './host.js';

/** A link as `ip -j -d link show` prints it (only the fields cni-sweep and the model use are typed). */
export interface FakeLink {
  ifindex: number;
  ifname: string;
  mtu?: number;
  master?: string;
  /** The peer, for a veth whose other end is in the same namespace. */
  link?: string;
  link_netnsid?: number;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_data?: unknown };
  [key: string]: unknown;
}

/** A route as `ip -j route show table main` prints it. */
export interface FakeRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  flags?: string[];
  [key: string]: unknown;
}

export interface FakeAddr {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
}

export type FsNode =
  | { type: 'file'; content: string; mode: number }
  | { type: 'dir'; mode: number }
  /** Targets are node paths, as if the root were chrooted into. */
  | { type: 'symlink'; target: string }
  | { type: 'other'; mode: number };

export interface Failure {
  code?: number;
  stderr?: string;
}

/** Binaries a typical node has. */
export const DEFAULT_BINS = [
  'ip', 'nft', 'systemctl', 'kubectl', 'rm', 'umount',
  ...['iptables-nft', 'iptables-legacy', 'ip6tables-nft', 'ip6tables-legacy'].flatMap((b) => [`${b}-save`, `${b}-restore`]),
];

const BACKEND_TOOL = /^(ip6?tables(?:-nft|-legacy)?)-(save|restore)$/;
const ROUTE_TYPES = ['unicast', 'local', 'broadcast', 'multicast', 'throw', 'unreachable', 'prohibit', 'blackhole', 'nat', 'anycast'];

function normal(nodePath: string): string {
  const p = underRoot('/', nodePath);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

const familyOf = (addr: string): 4 | 6 => (addr.includes(':') ? 6 : 4);

/** Route destinations compared the way the kernel sees them: "default" and bare hosts are prefixes. */
function canonDst(dst: string, family: 4 | 6): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  return (dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`).toLowerCase();
}

export interface FakeHostInit {
  root?: string;
  hostname?: string;
  isRoot?: boolean;
  bins?: string[];
}

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
  /** Keyed by node path ("/etc/cni/net.d/10-flannel.conflist"). */
  fs = new Map<string, FsNode>([['/', { type: 'dir', mode: 0o755 }]]);
  /** Real paths (root-joined), as /proc/self/mountinfo shows them. */
  mounts = new Set<string>();
  /** Real paths of netns files a running process still uses. */
  netnsUsed = new Set<string>();
  units = new Map<string, string>();
  /** Nodes cordoned through kubectl drain and not uncordoned since. */
  cordoned = new Set<string>();

  readonly calls: Step[] = [];
  readonly queries: string[][] = [];
  private faults: Array<{ match: (step: Step) => boolean; failure: Failure }> = [];
  private nextIndex = 1;

  constructor(init: FakeHostInit = {}) {
    this.root = init.root ?? '/';
    this.hostName = init.hostname ?? 'node-1';
    this.isRootUser = init.isRoot ?? true;
    this.bins = new Set(init.bins ?? DEFAULT_BINS);
  }

  // ---- building the node --------------------------------------------------------------------

  addLink(link: Omit<FakeLink, 'ifindex'> & { ifindex?: number }): this {
    if (this.link(link.ifname)) throw new Error(`FakeHost: link ${link.ifname} exists`);
    const ifindex = link.ifindex ?? this.nextIndex;
    this.nextIndex = Math.max(this.nextIndex, ifindex) + 1;
    this.links.push({ mtu: 1500, operstate: 'UP', ...link, ifindex });
    return this;
  }

  addAddr(ifname: string, cidr: string): this {
    const [local, len] = cidr.split('/');
    const list = this.addrs.get(ifname) ?? [];
    list.push({ family: familyOf(local) === 4 ? 'inet' : 'inet6', local, prefixlen: Number(len) });
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
    const p = normal(nodePath);
    if (p !== '/') this.mkdir(path.posix.dirname(p));
    const cur = this.fs.get(p);
    if (cur && cur.type !== 'dir') throw new Error(`FakeHost: ${p} exists and is not a directory`);
    if (!cur) this.fs.set(p, { type: 'dir', mode });
    return this;
  }

  writeFile(nodePath: string, content: string, mode = 0o644): this {
    const p = normal(nodePath);
    this.mkdir(path.posix.dirname(p));
    this.fs.set(p, { type: 'file', content, mode });
    return this;
  }

  symlink(nodePath: string, target: string): this {
    const p = normal(nodePath);
    this.mkdir(path.posix.dirname(p));
    this.fs.set(p, { type: 'symlink', target });
    return this;
  }

  /** A pod netns file under /run/netns, bind-mounted like `ip netns add` leaves it. */
  addNetns(name: string, opts: { mounted?: boolean; inUse?: boolean } = {}): this {
    const p = `/run/netns/${name}`;
    this.writeFile(p, '', 0o444);
    if (opts.mounted ?? true) this.mounts.add(this.realPath(p));
    if (opts.inUse) this.netnsUsed.add(this.realPath(p));
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

  // ---- inspecting the model (for assertions) -----------------------------------------------

  link(name: string): FakeLink | undefined {
    return this.links.find((l) => l.ifname === name);
  }

  linkNames(): string[] {
    return this.links.map((l) => l.ifname);
  }

  /** Every node path, sorted; dirs end in "/", symlinks show their target. */
  paths(): string[] {
    return [...this.fs.entries()]
      .filter(([p]) => p !== '/')
      .map(([p, n]) => (n.type === 'dir' ? `${p}/` : n.type === 'symlink' ? `${p} -> ${n.target}` : p))
      .sort();
  }

  exists(nodePath: string): boolean {
    return this.fs.has(normal(nodePath));
  }

  /** All chain names of a backend's table. */
  chains(backend: string, table: string): string[] {
    return this.iptables.get(backend)?.tables.find((t) => t.name === table)?.chains.map((c) => c.name) ?? [];
  }

  /** Every "-A CHAIN spec" line of a backend's table. */
  rules(backend: string, table: string): string[] {
    return this.iptables.get(backend)?.tables.find((t) => t.name === table)?.rules.map((r) => `-A ${r.chain} ${r.spec}`) ?? [];
  }

  realPath(nodePath: string): string {
    return underRoot(this.root, nodePath);
  }

  /** The node path of a real path a step names; a path outside the root is a bug, not a failure. */
  private nodePathOf(real: string): string {
    if (this.root === '/') return normal(real);
    const r = this.root.endsWith('/') ? this.root.slice(0, -1) : this.root;
    if (real === r) return '/';
    if (!real.startsWith(`${r}/`)) throw new Error(`FakeHost: ${real} is outside the root ${this.root}`);
    return normal(real.slice(r.length));
  }

  // ---- Host: reads ----------------------------------------------------------------------------

  async query(argv: string[]): Promise<ExecResult | null> {
    this.queries.push([...argv]);
    const a = argv.join(' ');
    const ok = (stdout: string, code = 0): ExecResult => ({ code, stdout, stderr: '' });
    const bin = argv[0];
    if (a === 'ip -j -d link show') return this.bins.has(bin) ? ok(JSON.stringify(this.links) + '\n') : null;
    const route = /^ip -j -([46]) route show table main$/.exec(a);
    if (route) return this.bins.has(bin) ? ok(JSON.stringify(this.routes[Number(route[1]) as 4 | 6]) + '\n') : null;
    const tool = BACKEND_TOOL.exec(bin ?? '');
    if (tool && tool[2] === 'save' && argv.length === 1) return this.bins.has(bin) ? ok(this.iptablesSave(tool[1])) : null;
    if (a === 'nft -j list tables') {
      if (!this.bins.has(bin)) return null;
      const items = this.nftTables.map((t, i) => ({ table: { family: t.family, name: t.name, handle: i + 1 } }));
      return ok(JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } }, ...items] }) + '\n');
    }
    if (bin === 'systemctl' && argv[1] === 'is-active' && argv.length > 2) {
      if (!this.bins.has(bin)) return null;
      const states = argv.slice(2).map((u) => this.units.get(u) ?? 'inactive');
      return ok(states.join('\n') + '\n', states.every((s) => s === 'active') ? 0 : 3);
    }
    throw new Error(`FakeHost: unsupported query: ${a}`);
  }

  async has(bin: string): Promise<boolean> {
    return this.bins.has(bin);
  }

  /** Follows symlinks like path resolution does; the final component only when asked. */
  private resolve(nodePath: string, followLast: boolean): string | null {
    let parts = normal(nodePath).split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0, hops = 0; i < parts.length; i++) {
      const next = path.posix.join(cur, parts[i]);
      const node = this.fs.get(next);
      const last = i === parts.length - 1;
      if (node?.type === 'symlink' && (!last || followLast)) {
        if (++hops > 40) return null;
        const target = path.posix.resolve(cur, node.target);
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

  async readFile(nodePath: string): Promise<string | null> {
    const p = this.resolve(nodePath, true);
    const node = p === null ? undefined : this.fs.get(p);
    if (!node) return null;
    if (node.type !== 'file') throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read ${nodePath}`), { code: 'EISDIR' });
    return node.content;
  }

  async readDir(nodePath: string): Promise<DirEntry[] | null> {
    const p = this.resolve(nodePath, true);
    if (p === null || this.fs.get(p)?.type !== 'dir') return null;
    const out: DirEntry[] = [];
    for (const [k, n] of this.fs) if (k !== '/' && path.posix.dirname(k) === p) out.push({ name: path.posix.basename(k), type: n.type });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async entryType(nodePath: string): Promise<EntryType | null> {
    const p = this.resolve(nodePath, false);
    return p === null ? null : (this.fs.get(p)?.type ?? null);
  }

  async mountPoints(): Promise<Set<string>> {
    return new Set(this.mounts);
  }

  async netnsInUse(paths: string[]): Promise<Set<string>> {
    return new Set(paths.filter((p) => this.netnsUsed.has(p)));
  }

  isRoot(): boolean {
    return this.isRootUser;
  }

  hostname(): string {
    return this.hostName;
  }

  // ---- Host: writes ---------------------------------------------------------------------------

  async apply(step: Step): Promise<ExecResult> {
    this.calls.push({ argv: [...step.argv], ...(step.stdin !== undefined ? { stdin: step.stdin } : {}) });
    const run = this.commandFor(step);
    if (!this.bins.has(step.argv[0])) throw new CommandFailedError(step.argv, null, '', 'not found on PATH');
    const fault = this.faults.find((f) => f.match(step));
    if (fault) throw new CommandFailedError(step.argv, fault.failure.code ?? 1, fault.failure.stderr ?? `injected failure: ${step.argv.join(' ')}`);
    const stderr = run();
    if (stderr) throw new CommandFailedError(step.argv, stderr.code, stderr.text);
    return { code: 0, stdout: '', stderr: '' };
  }

  /** Recognises a write and returns what running it does (an error, or null); throws on anything else. */
  private commandFor(step: Step): () => { code: number; text: string } | null {
    const { argv, stdin } = step;
    const a = argv.join(' ');
    const unknown = (why = 'unsupported command') => new Error(`FakeHost: ${why}: ${a}${stdin !== undefined ? ` <<< ${JSON.stringify(stdin)}` : ''}`);
    const needStdin = () => {
      if (stdin === undefined) throw unknown('missing stdin');
      return stdin.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    };

    if (a === 'ip -batch -') {
      const ops = needStdin().map((line) => this.parseIpLine(line) ?? (() => { throw unknown(`unsupported ip -batch line "${line}"`); })());
      return () => {
        // ip stops at the first failing line; the lines before it stay applied.
        for (let i = 0; i < ops.length; i++) {
          const err = ops[i]();
          if (err) return { code: 1, text: `${err}\nCommand failed -:${i + 1}\n` };
        }
        return null;
      };
    }

    const tool = BACKEND_TOOL.exec(argv[0] ?? '');
    if (tool && tool[2] === 'restore') {
      if (argv.length !== 3 || argv[1] !== '--noflush' || argv[2] !== '-w') throw unknown('restore without exactly --noflush -w');
      const lines = needStdin();
      return () => this.restore(tool[1], argv[0], lines, unknown);
    }

    if (a === 'nft -f -') {
      const dels = needStdin().map((line) => {
        const m = /^delete table (\S+) (\S+)$/.exec(line);
        if (!m) throw unknown(`unsupported nft line "${line}"`);
        return { family: m[1], name: m[2], line };
      });
      return () => {
        // One nft -f is one transaction: all or nothing.
        const missing = dels.find((d) => !this.nftTables.some((t) => t.family === d.family && t.name === d.name));
        if (missing) return { code: 1, text: `Error: Could not process rule: No such file or directory\n${missing.line}\n` };
        this.nftTables = this.nftTables.filter((t) => !dels.some((d) => d.family === t.family && d.name === t.name));
        return null;
      };
    }

    if (argv[0] === 'rm' && (argv[1] === '-f' || argv[1] === '-rf') && argv[2] === '--' && argv.length > 3) {
      if (stdin !== undefined) throw unknown('unexpected stdin');
      const targets = argv.slice(3).map((p) => ({ real: p, node: this.nodePathOf(p) }));
      return () => this.rm(targets, argv[1] === '-rf');
    }

    if (argv[0] === 'umount' && argv[1] === '--lazy' && argv[2] === '--' && argv.length > 3) {
      return () => {
        const errs: string[] = [];
        for (const p of argv.slice(3)) if (!this.mounts.delete(p)) errs.push(`umount: ${p}: not mounted.`);
        return errs.length ? { code: 32, text: errs.join('\n') + '\n' } : null;
      };
    }

    if (argv[0] === 'systemctl' && (argv[1] === 'stop' || argv[1] === 'start') && argv.length > 2) {
      const units = argv.slice(2);
      return () => {
        const unknownUnit = units.find((u) => !this.units.has(u));
        if (unknownUnit) return { code: 5, text: `Failed to ${argv[1]} ${unknownUnit}: Unit ${unknownUnit} not found.\n` };
        for (const u of units) this.units.set(u, argv[1] === 'stop' ? 'inactive' : 'active');
        return null;
      };
    }

    if (argv[0] === 'kubectl' && argv[1] === '--kubeconfig' && argv[2] && (argv[3] === 'drain' || argv[3] === 'uncordon') && argv[4]) {
      return () => {
        if (argv[3] === 'drain') this.cordoned.add(argv[4]);
        else this.cordoned.delete(argv[4]);
        return null;
      };
    }

    throw unknown();
  }

  /** One `ip -batch` line as an operation returning an error text or null; undefined when not understood. */
  private parseIpLine(line: string): (() => string | null) | undefined {
    const w = line.split(/\s+/);
    if (w[0] === 'link' && w[1] === 'delete' && w.length === 3) return () => this.deleteLink(w[2]);
    if (w[0] !== 'route' || w[1] !== 'delete') return undefined;
    let i = 2;
    const type = ROUTE_TYPES.includes(w[i]) ? w[i++] : undefined;
    const dst = w[i++];
    if (!dst) return undefined;
    const sel: { via?: string; dev?: string; table?: string; metric?: string } = {};
    for (; i < w.length; i += 2) {
      const key = w[i] as keyof typeof sel;
      if (!['via', 'dev', 'table', 'metric'].includes(key) || w[i + 1] === undefined || sel[key] !== undefined) return undefined;
      sel[key] = w[i + 1];
    }
    return () => {
      if (sel.dev && !this.link(sel.dev)) return `Cannot find device "${sel.dev}"`;
      const family = dst === 'default' ? (sel.via ? familyOf(sel.via) : 4) : familyOf(dst);
      if (sel.table && sel.table !== 'main' && sel.table !== '254') return 'RTNETLINK answers: No such process';
      // The kernel treats what the line leaves out as "any".
      const at = this.routes[family].findIndex(
        (r) =>
          canonDst(r.dst, family) === canonDst(dst, family) &&
          (type === undefined || (r.type ?? 'unicast') === type) &&
          (sel.via === undefined || r.gateway === sel.via) &&
          (sel.dev === undefined || r.dev === sel.dev) &&
          (sel.metric === undefined || (r.metric ?? 0) === Number(sel.metric)),
      );
      if (at < 0) return 'RTNETLINK answers: No such process';
      this.routes[family].splice(at, 1);
      return null;
    };
  }

  private deleteLink(name: string): string | null {
    const l = this.link(name);
    if (!l) return `Cannot find device "${name}"`;
    // A veth goes with its peer; routes and addresses go with their device; ports lose their master.
    const gone = [name];
    if (l.linkinfo?.info_kind === 'veth' && typeof l.link === 'string' && this.link(l.link)) gone.push(l.link);
    for (const g of gone) {
      this.links = this.links.filter((x) => x.ifname !== g);
      this.addrs.delete(g);
      for (const f of [4, 6] as const) this.routes[f] = this.routes[f].filter((r) => r.dev !== g);
      for (const port of this.links) if (port.master === g) delete port.master;
    }
    return null;
  }

  private rm(targets: Array<{ real: string; node: string }>, recursive: boolean): { code: number; text: string } | null {
    const errs: string[] = [];
    for (const t of targets) {
      const p = this.resolve(t.node, false);
      const node = p === null ? undefined : this.fs.get(p);
      if (!node || p === null) continue; // -f: a missing path is fine
      if (node.type === 'dir' && !recursive) {
        errs.push(`rm: cannot remove '${t.real}': Is a directory`);
        continue;
      }
      const doomed = [...this.fs.keys()].filter((k) => k === p || k.startsWith(`${p}/`));
      if (doomed.some((k) => this.mounts.has(this.realPath(k)))) {
        errs.push(`rm: cannot remove '${t.real}': Device or resource busy`);
        continue;
      }
      for (const k of doomed) this.fs.delete(k);
    }
    return errs.length ? { code: 1, text: errs.join('\n') + '\n' } : null;
  }

  /** iptables-restore --noflush: each table commits atomically at COMMIT; the first failing table stops the run. */
  private restore(backend: string, bin: string, lines: string[], unknown: (why: string) => Error): { code: number; text: string } | null {
    const dump = this.iptables.get(backend) ?? { header: null, tables: [] };
    let work: IptTable | null = null;
    let name = '';
    let failed: string | null = null;
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n];
      if (line.startsWith('*')) {
        name = line.slice(1);
        const cur = dump.tables.find((t) => t.name === name);
        work = cur ? structuredClone(cur) : { name, chains: [], rules: [] };
        failed = null;
        continue;
      }
      if (!work) throw unknown(`restore line outside a table "${line}"`);
      if (line === 'COMMIT') {
        if (failed) return { code: 1, text: `${bin}: line ${failed}\n` };
        const at = dump.tables.findIndex((t) => t.name === name);
        if (at >= 0) dump.tables[at] = work;
        else dump.tables.push(work);
        this.iptables.set(backend, dump);
        work = null;
        continue;
      }
      if (failed) continue;
      const m = /^-([DFX]) (\S+)(?: (.*))?$/.exec(line);
      if (!m || (m[1] !== 'D' && m[3] !== undefined)) throw unknown(`unsupported restore line "${line}"`);
      const [, op, chain, spec] = m;
      const t: IptTable = work;
      const c = t.chains.find((x) => x.name === chain);
      const fail = (why: string) => (failed = `${n + 1} failed: ${why}`);
      if (!c) {
        fail(`${line}: No chain/target/match by that name`);
      } else if (op === 'D') {
        const want = tokenize(spec ?? '').join('\0');
        const at = t.rules.findIndex((r) => r.chain === chain && r.tokens.join('\0') === want);
        if (at < 0) fail(`${line}: Bad rule (does a matching rule exist in that chain?)`);
        else t.rules.splice(at, 1);
      } else if (op === 'F') {
        t.rules = t.rules.filter((r) => r.chain !== chain);
      } else if (c.policy !== null) {
        fail(`${line}: Invalid argument (a built-in chain)`);
      } else if (t.rules.some((r) => r.chain === chain)) {
        fail(`${line}: Directory not empty`);
      } else if (t.rules.some((r) => r.target === chain)) {
        fail(`${line}: Too many links`);
      } else {
        t.chains = t.chains.filter((x) => x.name !== chain);
      }
    }
    if (work) return { code: 1, text: `${bin}: COMMIT expected at line ${lines.length + 1}\n` };
    return null;
  }
}
