// Multus's and whereabouts' files as their DaemonSets leave them on a test node (see flannel-node.ts):
// 00-multus.conf as multus-cni's thin entrypoint or its thick daemon writes it, multus.d's kubeconfig,
// its result cache and whereabouts.d.
import { write } from './flannel-node.js';

export const KUBECONFIG = '/etc/cni/net.d/multus.d/multus.kubeconfig';

/** 00-multus.conf as multus-cni's thin_entrypoint writes it, embedding `master`. */
export const thinConf = (master: string) =>
  JSON.stringify(
    {
      cniVersion: '0.3.1',
      name: 'multus-cni-network',
      type: 'multus',
      capabilities: { portMappings: true },
      kubeconfig: KUBECONFIG,
      delegates: [JSON.parse(master)],
    },
    null,
    2,
  ) + '\n';
/** As multus-daemon writes it: clusterNetwork is its container path to the master config. */
export const thickConf = (clusterNetwork: string) =>
  JSON.stringify({ cniVersion: '0.3.1', name: 'multus-cni-network', type: 'multus-shim', clusterNetwork, logToStderr: true }) + '\n';

/** Multus's and whereabouts' files as their DaemonSets leave them on the node. */
export function addMultus(n: { root: string }, conf: string, file = '00-multus.conf') {
  write(n.root, `etc/cni/net.d/${file}`, conf);
  write(n.root, KUBECONFIG.slice(1), 'apiVersion: v1\nkind: Config\n', 0o600);
  write(n.root, 'var/lib/cni/multus/0123abcd/results.json', '{}');
  write(n.root, 'etc/cni/net.d/whereabouts.d/whereabouts.conf', '{"datastore":"kubernetes"}\n', 0o600);
  write(n.root, 'etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig', 'apiVersion: v1\n', 0o600);
}
