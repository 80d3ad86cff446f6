// Whereabouts, checked against k8snetworkplumbingwg/whereabouts: an IPAM plugin whose allocations
// live in the cluster (IPPool and OverlappingRangeIPReservation objects), not on the node, so no
// node-side cleanup frees them; on the node it has only /etc/cni/net.d/whereabouts.d/
// (whereabouts.conf, whereabouts.kubeconfig, nodename: script/lib.sh). The DaemonSet installs it
// and then runs /ip-control-loop in the host network (doc/crds/daemonset-install.yaml).
import type { ProfileInput } from './schema.js';

export const whereabouts: ProfileInput = {
  name: 'whereabouts',
  description: 'Whereabouts IPAM: its whereabouts.d/ in the CNI conf dir (allocations live in the cluster)',
  // An IPAM plugin is never a config's plugin: whereabouts owns no config file, whoever's IPAM it is.
  config: { pluginTypes: ['whereabouts'], confSubdirs: ['whereabouts.d'] },
  state: { paths: [] },
  interfaces: { names: [], bridgePorts: false },
  routes: {},
  firewall: { chainPrefixes: [] },
  agents: {
    processes: [{ name: 'ip-control-loop' }],
    stop: 'kubectl -n kube-system delete daemonset whereabouts',
  },
};
