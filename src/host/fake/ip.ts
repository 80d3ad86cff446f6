// `ip` changes as the fake node applies them: the lines of an `ip -batch` input cni-sweep writes,
// and what the kernel does along with them (a veth goes with its peer, routes with their device).
import { canonDst, familyOf, ROUTE_TYPES, type FakeAddr, type FakeLink, type FakeRoute } from './model.js';

/** The part of the fake node `ip` changes. */
export interface IpState {
  links: FakeLink[];
  addrs: Map<string, FakeAddr[]>;
  routes: { 4: FakeRoute[]; 6: FakeRoute[] };
}

const linkOf = (node: IpState, name: string) => node.links.find((l) => l.ifname === name);

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
