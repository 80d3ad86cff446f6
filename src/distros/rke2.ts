// rke2, checked against rancher/rke2: bundle/bin/rke2-killall.sh (systemctl stop rke2-server.service,
// rke2-agent.service; kubelet and containerd are its children), bundle/bin/rke2-uninstall.sh (removes
// /etc/cni and /opt/cni), pkg/executor/staticpod/spw.go (containerd at /run/k3s/containerd/containerd.sock),
// pkg/cli/cmds/server.go (data dir /var/lib/rancher/rke2). Canal (flannel.4096) is its default CNI.
import type { DistroInput } from './schema.js';

export const rke2: DistroInput = {
  name: 'rke2',
  description: 'rke2 (kubelet and containerd as children of rke2-server or rke2-agent; Canal by default)',
  detect: {
    units: [
      { unit: 'rke2-server.service', role: 'server' },
      { unit: 'rke2-agent.service', role: 'agent' },
    ],
    paths: ['/usr/local/bin/rke2', '/usr/bin/rke2', '/etc/rancher/rke2/config.yaml', '/var/lib/rancher/rke2'],
  },
  config: { file: '/etc/rancher/rke2/config.yaml', dataDirKey: 'data-dir', defaultDataDir: '/var/lib/rancher/rke2' },
  cni: { confDirs: ['/etc/cni/net.d'], binDirs: ['/opt/cni/bin'] },
  criSocket: '/run/k3s/containerd/containerd.sock',
  // A server writes it (docs.rke2.io, cluster access); an agent has none.
  kubeconfig: '/etc/rancher/rke2/rke2.yaml',
  units: { kubelet: ['rke2-server.service', 'rke2-agent.service'], runtime: [] },
};
