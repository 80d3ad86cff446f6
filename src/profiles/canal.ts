// Canal: Flannel networking plus Calico policy. Its own conflist (10-canal.conflist) runs the calico
// plugin with host-local IPAM on Flannel's pod subnet, and the node carries both Flannel's and
// Calico's state, so the profile is the union of the two.
import { calico } from './calico.js';
import { flannel } from './flannel.js';
import type { ProfileInput } from './schema.js';

const union = <T>(a: T[] = [], b: T[] = []): T[] => [...new Set([...a, ...b])];

export const canal: ProfileInput = {
  name: 'canal',
  description: 'Canal (Flannel networking with Calico policy)',
  config: { pluginTypes: ['calico'], ipamTypes: ['host-local'], extraFiles: ['calico-kubeconfig'] },
  defaultNetworks: ['k8s-pod-network'],
  includes: ['flannel', 'calico'],
  state: {
    paths: union(flannel.state.paths, calico.state.paths),
    networkPaths: ['/var/lib/cni/networks/{network}'],
    subnetEnv: flannel.state.subnetEnv,
  },
  interfaces: {
    names: union(
      flannel.interfaces.names.filter((n) => n !== 'cni0'),
      calico.interfaces.names,
    ),
    patterns: union(flannel.interfaces.patterns, calico.interfaces.patterns),
    bridgePorts: false,
    kernelOwned: calico.interfaces.kernelOwned,
  },
  routes: {
    ...flannel.routes,
    protocols: calico.routes.protocols,
    sharedProtocols: calico.routes.sharedProtocols,
    prefixLens: calico.routes.prefixLens,
  },
  firewall: {
    chainPrefixes: union(flannel.firewall.chainPrefixes, calico.firewall.chainPrefixes),
    comments: flannel.firewall.comments,
    commentPrefixes: calico.firewall.commentPrefixes,
    legacyRules: flannel.firewall.legacyRules,
    ipsetPrefixes: calico.firewall.ipsetPrefixes,
  },
  nftables: union(flannel.nftables, calico.nftables),
  modules: calico.modules,
  // canal.yaml runs both agents (calico-node and kube-flannel containers) in the DaemonSet canal.
  agents: {
    processes: [...(flannel.agents?.processes ?? []), ...(calico.agents?.processes ?? [])],
    stop: 'kubectl -n kube-system delete daemonset canal',
  },
  // No overlays of its own: a Canal node's devices are Flannel's, and a composite in use puts its parts in use.
  networkPolicy: { enforces: 'yes' },
  // Its leftovers are its parts': their reasons (a Canal node has Calico's veths, not cni0).
  leftoverWhy: {
    interfaces: calico.leftoverWhy?.interfaces,
    routes: [flannel.leftoverWhy?.routes, calico.leftoverWhy?.routes].join(' '),
    firewall: [flannel.leftoverWhy?.firewall, calico.leftoverWhy?.firewall].join(' '),
  },
};
