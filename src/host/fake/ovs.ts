// Open vSwitch's kernel datapaths as `ovs-dpctl` sees them, for the fake host (this kernel has no
// openvswitch module). A datapath is a link of kind openvswitch without a master, whose ports are the
// links it is master of, as `ip -d link` shows them: other openvswitch links are its internal ports,
// a tunnel device with `external` set (collect_metadata) is a tunnel port OVS created, anything else
// a netdev attached to it. Only `show <dp>` and `del-dp <dp>` are understood; anything else throws.
import type { ExecResult } from '../host.js';

interface Link {
  ifname: string;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: unknown };
}

export interface OvsModel {
  /** The links as they are now. */
  links(): Link[];
  /** Deletes a link the way the kernel does (routes and addresses go with it). */
  deleteLink(name: string): string | null;
}

const isDatapath = (l: Link | undefined) => l?.linkinfo?.info_kind === 'openvswitch' && l.master === undefined;
const TUNNELS = ['vxlan', 'geneve', 'gre', 'gretap', 'erspan'];

function portType(l: Link): string {
  if (l.linkinfo?.info_kind === 'openvswitch') return 'internal';
  const external = (l.linkinfo?.info_data as { external?: boolean } | undefined)?.external === true;
  return external && TUNNELS.includes(l.linkinfo?.info_kind ?? '') ? l.linkinfo!.info_kind! : 'system';
}

const noDatapath = (what: string) => ({ code: 1, stdout: '', stderr: `ovs-dpctl: ${what} (No such device)\n` });

/** The answer to `ovs-dpctl show <dp>`, or undefined for any other command. */
export function ovsQuery(argv: string[], m: OvsModel): ExecResult | undefined {
  if (argv[0] !== 'ovs-dpctl') return undefined;
  if (argv[1] !== 'show' || argv.length !== 3) throw new Error(`FakeHost: unsupported query: ${argv.join(' ')}`);
  const dp = argv[2]!;
  if (!isDatapath(m.links().find((l) => l.ifname === dp))) return noDatapath(`opening datapath ${dp} failed`);
  const lines = [
    `system@${dp}:`,
    '\tlookups: hit:0 missed:0 lost:0',
    '\tflows: 0',
    '\tmasks: hit:0 total:0 hit/pkt:0.00',
    `\tport 0: ${dp} (internal)`,
  ];
  m.links()
    .filter((l) => l.master === dp)
    .forEach((l, i) => {
      const type = portType(l);
      lines.push(
        `\tport ${i + 1}: ${l.ifname}${type === 'system' ? '' : type === 'internal' ? ' (internal)' : ` (${type}: packet_type=ptap)`}`,
      );
    });
  return { code: 0, stdout: lines.join('\n') + '\n', stderr: '' };
}

/**
 * `ovs-dpctl del-dp <dp>`: the kernel detaches every port, destroys the datapath's internal devices
 * and the tunnel devices OVS created for it; attached netdevs stay, without a master.
 */
export function ovsCommand(argv: string[], m: OvsModel): (() => { code: number; stderr?: string }) | undefined {
  if (argv[0] !== 'ovs-dpctl') return undefined;
  if (argv[1] !== 'del-dp' || argv.length !== 3) throw new Error(`FakeHost: unsupported command: ${argv.join(' ')}`);
  const dp = argv[2]!;
  return () => {
    if (!isDatapath(m.links().find((l) => l.ifname === dp))) return noDatapath('opening datapath');
    for (const l of m.links().filter((x) => x.master === dp)) {
      if (portType(l) === 'system') delete l.master;
      else m.deleteLink(l.ifname);
    }
    m.deleteLink(dp);
    return { code: 0 };
  };
}
