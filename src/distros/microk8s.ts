// microk8s, checked against canonical/microk8s: default-args/containerd-template.toml (conf_dir
// ${SNAP_DATA}/args/cni-network, bin_dir ${SNAP_DATA}/opt/cni/bin), default-args/containerd (socket
// ${SNAP_COMMON}/run/containerd.sock), snap/hooks/install and configure (/etc/cni/net.d and
// /var/lib/calico made symlinks into ${SNAP_DATA} when absent), snap/hooks/remove (stops
// daemon-kubelite, then daemon-containerd; deletes FORWARD rules commented "generated for MicroK8s
// pods", which wrappers/run-kubelite-with-args adds). SNAP_DATA is /var/snap/microk8s/current (a
// symlink to the revision), SNAP_COMMON /var/snap/microk8s/common. Flannel (default-args/flannel-template.conflist,
// default-args/flanneld): subnet.env and its data dir under SNAP_COMMON.
import type { DistroInput } from './schema.js';

const FORWARD = 'generated for MicroK8s pods';

export const microk8s: DistroInput = {
  name: 'microk8s',
  description: 'microk8s (snap: conf and bin dirs under /var/snap/microk8s, daemon-kubelite and daemon-containerd)',
  detect: {
    units: [{ unit: 'snap.microk8s.daemon-kubelite.service' }, { unit: 'snap.microk8s.daemon-containerd.service' }],
    paths: ['/var/snap/microk8s/current', '/snap/microk8s/current'],
  },
  cni: {
    confDirs: ['/var/snap/microk8s/current/args/cni-network', '/etc/cni/net.d'],
    binDirs: ['/var/snap/microk8s/current/opt/cni/bin', '/opt/cni/bin'],
  },
  criSocket: '/var/snap/microk8s/common/run/containerd.sock',
  // What `microk8s kubectl` uses (microk8s config prints it).
  kubeconfig: '/var/snap/microk8s/current/credentials/client.config',
  units: { kubelet: ['snap.microk8s.daemon-kubelite.service'], runtime: ['snap.microk8s.daemon-containerd.service'] },
  adds: {
    calico: {
      statePaths: [
        '/var/snap/microk8s/current/var/lib/calico',
        '/var/snap/microk8s/current/var/run/calico',
        '/var/snap/microk8s/common/var/log/calico',
      ],
      comments: [FORWARD],
    },
    // default-args/flannel-template.conflist (subnetFile, dataDir under ${SNAP_COMMON}) and
    // default-args/flanneld (--subnet-file): microk8s's Flannel keeps its state in the snap's common dir.
    flannel: {
      statePaths: ['/var/snap/microk8s/common/run/flannel', '/var/snap/microk8s/common/var/lib/cni/flannel'],
      subnetEnv: '/var/snap/microk8s/common/run/flannel/subnet.env',
      comments: [FORWARD],
    },
  },
};
