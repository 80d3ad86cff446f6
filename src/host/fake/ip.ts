// The fake node's links, addresses and routes as iproute2 6.1's `ip` shows and changes them. Reads:
// `-j -d link show`, `-j -4|-6 route show table main`, `-j addr show dev DEV`, `-j -d addr show`, and
// `nsenter --net=FILE ip -j -d link show` inside a pod's network namespace; what the backup saves:
// `-d -j link show`, `-d -j addr show`, `-d -j -4|-6 route show table all`; writes: the lines of an
// `ip -batch -` input (stopping at the first failing line, as ip does), with what the kernel does
// along with them (a veth goes with its peer, routes with their device). Any other form or line
// throws (fails closed).
import path from 'node:path';
import type { FakeHost } from '../fake.js';
import { netnsIdsArgv, type ExecResult } from '../host.js';
import { bpfIpLine } from './bpf.js';
import {
  canonDst,
  fail,
  familyOf,
  OK,
  printed,
  refused,
  ROUTE_TYPES,
  type FakeAddr,
  type FakeLink,
  type FakeRoute,
  type Outcome,
} from './model.js';

/** The part of the fake node `ip` changes. */
export interface IpState {
  links: FakeLink[];
  addrs: Map<string, FakeAddr[]>;
  routes: { 4: FakeRoute[]; 6: FakeRoute[] };
}

const linkOf = (node: IpState, name: string) => node.links.find((l) => l.ifname === name);
const linksJson = (node: IpState) => JSON.stringify(node.links) + '\n';
const routesJson = (node: IpState, family: string) => JSON.stringify(node.routes[Number(family) as 4 | 6]) + '\n';

export function ipQuery(node: IpState, argv: string[]): ExecResult | undefined {
  const a = argv.join(' ');
  if (a === 'ip -j -d link show') return printed(linksJson(node));
  const route = /^ip -j -([46]) route show table main$/.exec(a);
  if (route) return printed(routesJson(node, route[1]!));
  const addr = /^ip -j addr show dev (\S+)$/.exec(a);
  if (addr) {
    const l = linkOf(node, addr[1]!);
    if (!l) return refused(1, `Device "${addr[1]!}" does not exist.\n`);
    return printed(
      JSON.stringify([{ ifindex: l.ifindex, ifname: l.ifname, flags: l.flags ?? [], addr_info: node.addrs.get(l.ifname) ?? [] }]) + '\n',
    );
  }
  if (a === 'ip -j -d addr show' || a === 'ip -d -j addr show') {
    return printed(
      JSON.stringify(
        // Every link with the fields `ip -j -d link show` prints for it, then its addresses, as ip prints them.
        node.links.map((l) => ({ ...l, addr_info: node.addrs.get(l.ifname) ?? [] })),
      ) + '\n',
    );
  }
  return undefined;
}

/** `nsenter --net=FILE ip -j -d link show`: the links inside a pod's network namespace (by the real path of its netns file). */
export function nsenterQuery(netnsLinks: Map<string, FakeLink[]>, argv: string[]): ExecResult | undefined {
  const ns = /^nsenter --net=(\S+) ip -j -d link show$/.exec(argv.join(' '));
  if (!ns) return undefined;
  const inside = netnsLinks.get(ns[1]!);
  if (!inside) return refused(1, `nsenter: reassociate to namespace 'ns/net' failed: Invalid argument\n`);
  return printed(JSON.stringify(inside) + '\n');
}

/**
 * `ip -j netns list` over the files in a directory (the last argument, a real path): a mounted
 * file's id is its namespace's id here, the link_netnsid of the host veth whose peer is inside it;
 * a file without one (not mounted, no peer here) is listed without an id, as ip prints it.
 */
export function netnsListQuery(node: Pick<FakeHost, 'fs' | 'netnsLinks' | 'mounts' | 'links'>, argv: string[]): ExecResult | undefined {
  // Exactly the netns phase's form (netnsIdsArgv), for the directory it names last.
  const dir = argv.at(-1)!;
  const form = netnsIdsArgv(dir);
  if (argv.length !== form.length || form.some((w, i) => argv[i] !== w)) return undefined;
  const out = [...node.fs.keys()]
    .filter((p) => path.posix.dirname(p) === dir)
    .map((p) => {
      const peer = (node.netnsLinks.get(p) ?? []).find((l) => l.link_index !== undefined && node.mounts.has(p));
      const id = peer ? node.links.find((h) => h.ifindex === peer.link_index)?.link_netnsid : undefined;
      return { name: path.posix.basename(p), ...(id === undefined ? {} : { id }) };
    });
  return printed(JSON.stringify(out) + '\n');
}

/** The output of an ip listing the backup saves to a file; undefined for any other form. */
export function ipSaved(node: IpState, argv: string[]): (() => Outcome) | undefined {
  const a = argv.join(' ');
  if (a === 'ip -d -j link show') return () => ({ code: 0, stdout: linksJson(node) });
  if (a === 'ip -d -j addr show') {
    return () => ({
      code: 0,
      stdout: JSON.stringify(node.links.map((l) => ({ ...l, addr_info: node.addrs.get(l.ifname) ?? [] }))) + '\n',
    });
  }
  const routes = /^ip -d -j -([46]) route show table all$/.exec(a);
  if (routes) return () => ({ code: 0, stdout: routesJson(node, routes[1]!) });
  return undefined;
}

/** `ip -batch -`, as what running it does; `lines` reads its stdin. Undefined for any other form. */
export function ipCommand(
  host: FakeHost,
  argv: string[],
  lines: () => string[],
  unknown: (why: string) => Error,
): (() => Outcome) | undefined {
  if (argv.join(' ') !== 'ip -batch -') return undefined;
  const ops = lines().map(
    (line) =>
      ipBatchLine(host, line) ??
      bpfIpLine(host, line) ??
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

/**
 * One line of an `ip -batch` input, as a change to apply later (or undefined: not a line the fake
 * models, which fails the batch closed): link delete (one, or a group), link set down or into a
 * group, address flush, route delete with the selectors ip accepts.
 */
export function ipBatchLine(node: IpState, line: string): (() => string | null) | undefined {
  const w = line.split(/\s+/);
  // An Open vSwitch device has no rtnetlink delete: only its datapath's removal takes it (ovs.ts).
  if (w[0] === 'link' && w[1] === 'delete' && w.length === 3)
    return () =>
      linkOf(node, w[2]!)?.linkinfo?.info_kind === 'openvswitch' ? 'RTNETLINK answers: Operation not supported' : deleteLink(node, w[2]!);
  if (w[0] === 'link' && w[1] === 'set' && w[2] === 'dev' && w[4] === 'group' && w.length === 6 && /^\d+$/.test(w[5]!)) {
    return () => {
      const l = linkOf(node, w[3]!);
      if (!l) return `Cannot find device "${w[3]!}"`;
      l.group = w[5];
      return null;
    };
  }
  if (w[0] === 'link' && w[1] === 'delete' && w[2] === 'group' && w.length === 4 && /^\d+$/.test(w[3]!)) {
    // The kernel deletes every link of the group; an empty group is an error, as with ip.
    return () => {
      const members = node.links.filter((l) => l.group === w[3]);
      if (!members.length) return 'RTNETLINK answers: No such device';
      // All or nothing: a member without an rtnetlink delete (a NIC, an Open vSwitch port) fails the group.
      if (members.some((l) => !l.linkinfo?.info_kind || l.linkinfo.info_kind === 'openvswitch'))
        return 'RTNETLINK answers: Operation not supported';
      for (const m of members) if (linkOf(node, m.ifname)) deleteLink(node, m.ifname);
      return null;
    };
  }
  if (w[0] === 'link' && w[1] === 'set' && w[3] === 'down' && w.length === 4) return () => linkDown(node, w[2]!);
  if (w[0] === 'address' && w[1] === 'flush' && w[2] === 'dev' && w.length === 4) return () => flushAddrs(node, w[3]!);
  if (w[0] !== 'route' || w[1] !== 'delete') return undefined;
  let i = 2;
  const type = ROUTE_TYPES.includes(w[i] ?? '') ? w[i++] : undefined;
  const dst = w[i++];
  if (!dst) return undefined;
  const sel: { via?: string; dev?: string; table?: string; metric?: string } = {};
  for (; i < w.length; i += 2) {
    const key = w[i] as keyof typeof sel;
    if (!['via', 'dev', 'table', 'metric'].includes(key) || w[i + 1] === undefined || sel[key] !== undefined) return undefined;
    sel[key] = w[i + 1];
  }
  return () => {
    if (sel.dev && !linkOf(node, sel.dev)) return `Cannot find device "${sel.dev}"`;
    const family = dst === 'default' ? (sel.via ? familyOf(sel.via) : 4) : familyOf(dst);
    if (sel.table && sel.table !== 'main' && sel.table !== '254') return 'RTNETLINK answers: No such process';
    // The kernel treats what the line leaves out as "any".
    const at = node.routes[family].findIndex(
      (r) =>
        canonDst(r.dst, family) === canonDst(dst, family) &&
        (type === undefined || (r.type ?? 'unicast') === type) &&
        (sel.via === undefined || r.gateway === sel.via) &&
        (sel.dev === undefined || r.dev === sel.dev) &&
        (sel.metric === undefined || (r.metric ?? 0) === Number(sel.metric)),
    );
    if (at < 0) return 'RTNETLINK answers: No such process';
    node.routes[family].splice(at, 1);
    return null;
  };
}

export function deleteLink(node: IpState, name: string): string | null {
  const l = linkOf(node, name);
  if (!l) return `Cannot find device "${name}"`;
  // A veth goes with its peer; routes and addresses go with their device; ports lose their master.
  const gone = [name];
  if (l.linkinfo?.info_kind === 'veth' && typeof l.link === 'string' && linkOf(node, l.link)) gone.push(l.link);
  for (const g of gone) {
    node.links = node.links.filter((x) => x.ifname !== g);
    node.addrs.delete(g);
    for (const f of [4, 6] as const) node.routes[f] = node.routes[f].filter((r) => r.dev !== g);
    for (const port of node.links) if (port.master === g) delete port.master;
  }
  return null;
}

/** A device set down loses its routes, as the kernel drops them. */
function linkDown(node: IpState, name: string): string | null {
  const l = linkOf(node, name);
  if (!l) return `Cannot find device "${name}"`;
  l.flags = (l.flags ?? []).filter((f) => f !== 'UP' && f !== 'LOWER_UP');
  l.operstate = 'DOWN';
  for (const f of [4, 6] as const) node.routes[f] = node.routes[f].filter((r) => r.dev !== name);
  return null;
}

/** Flushing addresses takes their prefix routes along. */
function flushAddrs(node: IpState, name: string): string | null {
  if (!linkOf(node, name)) return `Cannot find device "${name}"`;
  node.addrs.delete(name);
  for (const f of [4, 6] as const) node.routes[f] = node.routes[f].filter((r) => !(r.dev === name && r.protocol === 'kernel'));
  return null;
}
