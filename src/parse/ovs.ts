// `ovs-dpctl show <datapath>` (Open vSwitch lib/dpctl.c show_dpif): a "system@<name>:" line, tab-
// indented statistics, then one line per port: "\tport <n>: <name>", followed by " (<type>...)"
// unless the type is "system" (a netdev attached to the datapath): "internal" for the datapath's own
// devices, a tunnel type (vxlan, geneve, gre ...) with its options for the tunnel ports OVS created.

export interface DatapathPort {
  name: string;
  /** "system", "internal", or a tunnel type. */
  type: string;
}

export function parseDpctlShow(text: string): DatapathPort[] {
  const out: DatapathPort[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+port \d+: (\S+)(?: \(([^:)]+)[^)]*\))?\s*$/.exec(line);
    if (m) out.push({ name: m[1]!, type: m[2] ?? 'system' });
  }
  return out;
}
