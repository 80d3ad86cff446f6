// Multus, checked against k8snetworkplumbingwg/multus-cni: the thin plugin (type multus, run by the
// DaemonSet's /thin_entrypoint) and the thick shim (type multus-shim, talking to multus-daemon over
// /run/multus/multus.sock); cmd/thin_entrypoint writes 00-multus.conf (00-multus.conflist from CNI
// 1.0.0) and multus.d/multus.kubeconfig; the thick daemon reads multus.d/daemon-config.json
// (pkg/server/types.go); delegate results are cached in /var/lib/cni/multus (pkg/types/conf.go
// defaultCNIDir). Multus has no interfaces, routes or firewall rules of its own: its delegates do.
// A Multus config whose delegate another run removes goes with that run (src/multus.ts).
import type { ProfileInput } from './schema.js';

export const multus: ProfileInput = {
  name: 'multus',
  description: 'Multus (thin and thick plugin): its config in front of the cluster network, multus.d/ and its caches',
  config: { pluginTypes: ['multus', 'multus-shim'], confSubdirs: ['multus.d'] },
  state: { paths: ['/var/lib/cni/multus', '/run/multus'] },
  interfaces: { names: [], bridgePorts: false },
  routes: {},
  firewall: { chainPrefixes: [] },
  // deployments/multus-daemonset.yml runs /thin_entrypoint (it waits for a signal once the config is
  // written), multus-daemonset-thick.yml /usr/src/multus-cni/bin/multus-daemon; both use the host network.
  agents: {
    processes: [{ name: 'thin_entrypoint' }, { name: 'multus-daemon' }],
    stop: 'kubectl -n kube-system delete daemonset kube-multus-ds',
  },
};
