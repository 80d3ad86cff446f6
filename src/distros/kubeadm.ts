// The layout kubeadm and most package installs use: /etc/cni/net.d, /opt/cni/bin, kubelet.service
// and a containerd, CRI-O or Docker (cri-dockerd) unit. The default when nothing else is found.
import type { DistroInput } from './schema.js';

export const kubeadm = {
  name: 'kubeadm',
  description: 'kubeadm or a plain install (/etc/cni/net.d, /opt/cni/bin, kubelet.service plus a runtime unit)',
  detect: { units: [{ unit: 'kubelet.service' }], paths: ['/etc/kubernetes/kubelet.conf'] },
  cni: { confDirs: ['/etc/cni/net.d'], binDirs: ['/opt/cni/bin'] },
  // Docker also needs its socket stopped or it restarts on demand.
  units: {
    kubelet: ['kubelet.service'],
    runtime: ['cri-docker.service', 'docker.socket', 'docker.service', 'containerd.service', 'crio.service'],
  },
} satisfies DistroInput;
