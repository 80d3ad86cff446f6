// The fake node's BPF side: clsact/ingress qdiscs and tc filters on its links, XDP programs (the
// `xdp` object of a FakeLink, as `ip -j -d link show` prints it) and bpffs mounts. It answers the
// reads the bpf phase makes and the writes it emits, with what iproute2 6.1 prints on kernel 6.18;
// anything else it does not recognise is left to FakeHost, which fails closed.
import type { ExecResult } from '../host.js';
import type { FakeHost, FakeLink } from '../fake.js';

export interface FakeTcFilter {
  dir: 'ingress' | 'egress';
  pref: number;
  chain?: number;
  /** bpf, u32, matchall ... */
  kind: string;
  /** As tc prints it: "0x1" for bpf, "800::800" for u32. */
  handle: string;
  /** The BPF program's name as the kernel keeps it (bpf filters); "" for a program loaded without one. */
  prog?: string;
  /** The filter's own name, as its loader set it; default "<prog>-<dev>" (Cilium's Go loader). */
  name?: string;
}

interface FakeBpfState {
  qdiscs: Array<{ dev: string; kind: 'clsact' | 'ingress' }>;
  filters: Array<FakeTcFilter & { dev: string }>;
  /** Real paths of bpffs mounts. */
  bpffs: string[];
  nextProg: number;
}

const states = new WeakMap<FakeHost, FakeBpfState>();

function state(host: FakeHost): FakeBpfState {
  let s = states.get(host);
  if (!s) states.set(host, (s = { qdiscs: [], filters: [], bpffs: [], nextProg: 100 }));
  return s;
}

const progJson = (s: FakeBpfState, name: string) => ({ id: s.nextProg++, name, tag: '59f4a931744dcdc6', jited: 1 });

/** A qdisc on a link of the fake node. */
export function addQdisc(host: FakeHost, dev: string, kind: 'clsact' | 'ingress'): void {
  if (!host.link(dev)) throw new Error(`FakeHost: no link ${dev}`);
  state(host).qdiscs.push({ dev, kind });
}

/** A tc filter on a link's clsact or ingress qdisc. */
export function addTcFilter(host: FakeHost, dev: string, f: FakeTcFilter): void {
  const s = state(host);
  const q = s.qdiscs.find((x) => x.dev === dev);
  if (!q || (q.kind === 'ingress' && f.dir === 'egress')) throw new Error(`FakeHost: no qdisc for ${dev} ${f.dir}`);
  s.filters.push({ ...f, dev });
}

/** An XDP program attached to a link: mode 1 driver, 2 generic, 3 offload. */
export function attachXdp(host: FakeHost, dev: string, mode: 1 | 2 | 3, name: string): void {
  const l = host.link(dev);
  if (!l) throw new Error(`FakeHost: no link ${dev}`);
  const prog = { ...progJson(state(host), name), load_time: 10763394514303, created_by_uid: 0 };
  const attached = [...(xdpOf(l)?.attached ?? []).filter((a) => a.mode !== mode), { mode, prog }];
  setXdp(l, attached);
}

/** A bpffs mounted at a node path. */
export function mountBpffs(host: FakeHost, nodePath: string): void {
  host.mkdir(nodePath, 0o700);
  const real = host.realPath(nodePath);
  state(host).bpffs.push(real);
  host.mounts.add(real);
}

/** What is left on the node, for assertions: qdiscs and filters per link, sorted. */
export function tcState(host: FakeHost): string[] {
  const s = state(host);
  return [
    ...s.qdiscs.filter((q) => host.link(q.dev)).map((q) => `qdisc ${q.dev} ${q.kind}`),
    ...s.filters
      .filter((f) => host.link(f.dev))
      .map((f) => `filter ${f.dev} ${f.dir} pref ${f.pref} ${f.kind} ${f.handle}${f.prog ? ` ${f.prog}` : ''}`),
  ].sort();
}

type XdpAttached = Array<{ mode: number; prog: { name: string } & Record<string, unknown> }>;

function xdpOf(l: FakeLink): { mode: number; attached?: XdpAttached } | undefined {
  return l.xdp as { mode: number; attached?: XdpAttached } | undefined;
}

/** ip prints one mode with its prog, or mode 4 (XDP_ATTACHED_MULTI) when several are attached. */
function setXdp(l: FakeLink, attached: XdpAttached): void {
  if (!attached.length) delete l.xdp;
  else if (attached.length === 1) l.xdp = { mode: attached[0]!.mode, prog: attached[0]!.prog, attached };
  else l.xdp = { mode: 4, attached };
}

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });

/** The bpf phase's reads; undefined for anything else. */
export function bpfQuery(host: FakeHost, argv: string[]): ExecResult | undefined {
  const a = argv.join(' ');
  const s = state(host);
  if (a === 'findmnt -J -t bpf -o TARGET')
    return ok(JSON.stringify({ filesystems: s.bpffs.filter((m) => host.mounts.has(m)).map((target) => ({ target })) }, null, 3) + '\n');
  if (a === 'tc -j qdisc show') {
    const out = host.links.flatMap((l) => [
      { kind: 'noqueue', handle: '0:', dev: l.ifname, root: true, refcnt: 2, options: {} },
      ...s.qdiscs
        .filter((q) => q.dev === l.ifname)
        .map((q) => ({ kind: q.kind, handle: 'ffff:', dev: q.dev, parent: 'ffff:fff1', options: {} })),
    ]);
    return ok(JSON.stringify(out) + '\n');
  }
  const show = /^tc -j filter show dev (\S+) (ingress|egress)$/.exec(a);
  if (show) {
    const [, dev, dir] = show;
    if (!host.link(dev!)) return { code: 1, stdout: '', stderr: `Cannot find device "${dev!}"\n` };
    const mine = s.filters.filter((f) => f.dev === dev && f.dir === dir).sort((x, y) => x.pref - y.pref);
    const out: unknown[] = [];
    let seen = '';
    for (const f of mine) {
      const head = { protocol: 'all', pref: f.pref, kind: f.kind, chain: f.chain ?? 0 };
      if (seen !== `${f.chain ?? 0}/${f.pref}`) out.push(head);
      seen = `${f.chain ?? 0}/${f.pref}`;
      const options =
        f.kind === 'bpf'
          ? {
              handle: f.handle,
              bpf_name: f.name ?? `${f.prog}-${f.dev}`,
              'direct-action': true,
              not_in_hw: true,
              prog: progJson(s, f.prog ?? ''),
            }
          : { fh: f.handle, not_in_hw: true };
      out.push({ ...head, options });
    }
    return ok(JSON.stringify(out) + '\n');
  }
  return undefined;
}

/** One `ip -batch` line detaching XDP (`link set dev X xdpgeneric off`); undefined for any other line. */
export function bpfIpLine(host: FakeHost, line: string): (() => string | null) | undefined {
  const m = /^link set dev (\S+) (xdpdrv|xdpgeneric|xdpoffload) off$/.exec(line.trim());
  if (!m) return undefined;
  const mode = { xdpdrv: 1, xdpgeneric: 2, xdpoffload: 3 }[m[2] as 'xdpdrv' | 'xdpgeneric' | 'xdpoffload'];
  return () => {
    const l = host.link(m[1]!);
    if (!l) return `Cannot find device "${m[1]!}"`;
    // Nothing attached in that mode: the kernel detaches nothing and says nothing.
    setXdp(
      l,
      (xdpOf(l)?.attached ?? []).filter((x) => x.mode !== mode),
    );
    return null;
  };
}

/** `tc -batch -` with the bpf phase's lines; undefined for any other command. Throws on a line it does not know. */
export function bpfCommand(
  host: FakeHost,
  argv: string[],
  stdin: string | undefined,
  unknown: (why: string) => Error,
): (() => { code: number; stderr?: string }) | undefined {
  if (argv[0] !== 'tc') return undefined;
  if (argv.join(' ') !== 'tc -batch -' || stdin === undefined) throw unknown('unsupported tc command');
  const s = state(host);
  const ops = stdin
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line): (() => string | null) => {
      const f = /^filter del dev (\S+) (ingress|egress) pref (\d+)(?: chain (\d+))? handle (\S+) bpf$/.exec(line);
      if (f) {
        const [, dev, dir, pref, chain, handle] = f;
        return () => {
          if (!host.link(dev!)) return `Cannot find device "${dev!}"`;
          if (!s.qdiscs.some((q) => q.dev === dev)) return "Error: Parent Qdisc doesn't exists.";
          const inPref = s.filters.filter(
            (x) => x.dev === dev && x.dir === dir && x.pref === Number(pref) && (x.chain ?? 0) === Number(chain ?? 0),
          );
          if (!inPref.length) return 'Error: Cannot find specified filter chain.';
          const at = inPref.find((x) => x.handle === handle);
          if (!at) return 'Error: Specified filter handle not found.';
          if (at.kind !== 'bpf') return 'Error: Specified filter kind does not match existing one.';
          s.filters.splice(s.filters.indexOf(at), 1);
          return null;
        };
      }
      const q = /^qdisc del dev (\S+) clsact$/.exec(line);
      if (q) {
        return () => {
          if (!host.link(q[1]!)) return `Cannot find device "${q[1]!}"`;
          const at = s.qdiscs.findIndex((x) => x.dev === q[1] && x.kind === 'clsact');
          if (at < 0) return 'Error: Cannot find specified qdisc on specified device.';
          s.qdiscs.splice(at, 1);
          // The kernel destroys the filters with the qdisc that holds them.
          s.filters = s.filters.filter((x) => x.dev !== q[1]);
          return null;
        };
      }
      throw unknown(`unsupported tc -batch line "${line}"`);
    });
  return () => {
    for (let i = 0; i < ops.length; i++) {
      const err = ops[i]!();
      if (err) return { code: 1, stderr: `${err}\nCommand failed -:${i + 1}\n` };
    }
    return { code: 0 };
  };
}
