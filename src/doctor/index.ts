// `cni-sweep doctor`: read the node once, run every check over that view, in this order (config,
// then what pods need to start, then leftovers, then what silently loses traffic).
import type { Host } from '../host/host.js';
import { Gaps } from '../inspect.js';
import { bridgePodCidr } from './checks/bridge-pod-cidr.js';
import { cniConfigs } from './checks/cni-configs.js';
import { flannelSubnet } from './checks/flannel-subnet.js';
import { hostgwRoutes } from './checks/hostgw-routes.js';
import { iptablesSplit } from './checks/iptables-split.js';
import { ipam } from './checks/ipam.js';
import { leftoverBpf } from './checks/leftover-bpf.js';
import { leftoverFirewall } from './checks/leftover-firewall.js';
import { leftoverInterfaces } from './checks/leftover-interfaces.js';
import { leftoverPolicyRouting } from './checks/leftover-policy-routing.js';
import { leftoverRoutes } from './checks/leftover-routes.js';
import { mtu } from './checks/mtu.js';
import { multusConfigs } from './checks/multus.js';
import { networkPolicy } from './checks/network-policy.js';
import { pluginBinaries } from './checks/plugin-binaries.js';
import { podNetwork } from './checks/pod-network.js';
import type { Check, Finding, NodeView } from './types.js';
import { gatherView, type ViewOptions } from './view.js';

export const CHECKS: Check[] = [
  cniConfigs,
  pluginBinaries,
  multusConfigs,
  flannelSubnet,
  bridgePodCidr,
  leftoverInterfaces,
  ipam,
  podNetwork,
  mtu,
  hostgwRoutes,
  leftoverRoutes,
  leftoverPolicyRouting,
  leftoverFirewall,
  leftoverBpf,
  iptablesSplit,
  networkPolicy,
];

export function diagnose(view: NodeView, checks: Check[] = CHECKS): Finding[] {
  return checks.flatMap((c) => c.run(view));
}

/** Info findings are worth knowing but leave the node healthy. */
export const isHealthy = (findings: Finding[]) => findings.every((f) => f.severity === 'info');

export async function doctor(host: Host, opts: ViewOptions, gaps = new Gaps()): Promise<{ view: NodeView; findings: Finding[] }> {
  const view = await gatherView(host, opts, gaps);
  return { view, findings: diagnose(view) };
}

export type { Finding, NodeView } from './types.js';
