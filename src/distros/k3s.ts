// k3s, checked against k3s-io/k3s: install.sh (units k3s.service for a server, k3s-agent.service for
// an agent; config /etc/rancher/k3s/config.yaml; data dir /var/lib/rancher/k3s), pkg/agent/config/
// config.go (CNIConfDir <data-dir>/agent/etc/cni/net.d, set only while Flannel is on; CNIBinDir the
// dir of host-local, the multi-call `cni` under <data-dir>/data/current/bin; containerd at
// /run/k3s/containerd/containerd.sock), pkg/agent/flannel/setup.go (10-flannel.conflist) and
// pkg/agent/netpol/netpol.go (kube-router's netpol controller on iptables and ipset). One process
// holds kubelet, containerd and Flannel: one stop, one start.
// kube-router's names from cloudnativelabs/kube-router pkg/controllers/netpol/network_policy_controller.go:
// KUBE-ROUTER-INPUT/FORWARD/OUTPUT, KUBE-NWPLCY-*, KUBE-POD-FW-*, ipsets KUBE-SRC-*, KUBE-DST-*,
// kube-router-* (local pods, pod subnets, node IPs); its nftables mode uses tables kube-router-filter-ipv4/6.
// kube-proxy's KUBE-* (KUBE-SERVICES, KUBE-SVC-*, KUBE-FIREWALL ...) are not among them and stay.
import type { DistroInput } from './schema.js';

export const K3S_NETPOL = {
  chainPrefixes: ['KUBE-ROUTER-', 'KUBE-NWPLCY-', 'KUBE-POD-FW-'],
  // IPv6 sets carry ipset's "inet6:" prefix (kube-router pkg/utils/ipset.go IPv6SetPrefix).
  ipsetPrefixes: ['KUBE-SRC-', 'KUBE-DST-', 'kube-router-', 'inet6:KUBE-SRC-', 'inet6:KUBE-DST-', 'inet6:kube-router-'],
  nftables: [
    { family: 'ip' as const, name: 'kube-router-filter-ipv4' },
    { family: 'ip6' as const, name: 'kube-router-filter-ipv6' },
  ],
};

export const k3s: DistroInput = {
  name: 'k3s',
  description: 'k3s (kubelet, containerd, Flannel and kube-router netpol in one k3s or k3s-agent process)',
  detect: {
    units: [
      { unit: 'k3s.service', role: 'server' },
      { unit: 'k3s-agent.service', role: 'agent' },
    ],
    paths: ['/usr/local/bin/k3s', '/etc/rancher/k3s/config.yaml', '/var/lib/rancher/k3s'],
  },
  config: { file: '/etc/rancher/k3s/config.yaml', dataDirKey: 'data-dir', defaultDataDir: '/var/lib/rancher/k3s' },
  // With `flannel-backend: none` k3s leaves containerd's default /etc/cni/net.d to the CNI installed instead.
  cni: {
    confDirs: ['{dataDir}/agent/etc/cni/net.d', '/etc/cni/net.d'],
    // Without its Flannel, k3s leaves containerd's default conf dir to the CNI installed instead: a
    // stale 10-flannel.conflist in its own dir is a leftover, not the runtime's config.
    confDirsWhen: [{ config: { 'flannel-backend': 'none' }, confDirs: ['/etc/cni/net.d', '{dataDir}/agent/etc/cni/net.d'] }],
    binDirs: ['{dataDir}/data/current/bin', '/opt/cni/bin'],
  },
  criSocket: '/run/k3s/containerd/containerd.sock',
  // install.sh: the server writes it (write-kubeconfig); an agent has none.
  kubeconfig: '/etc/rancher/k3s/k3s.yaml',
  units: { kubelet: ['k3s.service', 'k3s-agent.service'], runtime: [] },
  adds: {
    flannel: {
      statePaths: ['{dataDir}/agent/etc/flannel/net-conf.json'],
      chainPrefixes: K3S_NETPOL.chainPrefixes,
      ipsetPrefixes: K3S_NETPOL.ipsetPrefixes,
      nftables: K3S_NETPOL.nftables,
      // Then kube-router's netpol runs beside whatever CNI replaced Flannel: it is k3s's, not a leftover.
      unlessConfig: { 'flannel-backend': 'none' },
    },
  },
};
