// Turns a test node (flannel-node.ts, calico-node.ts) into a k3s, rke2 or microk8s node: moves the
// CNI files into that distribution's layout, swaps kubelet/containerd for its units in the systemctl
// shim, and adds what it adds (k3s's kube-router netpol chains and ipsets, microk8s's FORWARD rules).
// Layouts follow the sources cited in src/distros/*.ts.
import fs from 'node:fs';
import path from 'node:path';
import { inNs, shimDir, write, type FlannelNode } from './flannel-node.js';
import { SHIMS } from './harness.js';

/** k3s's conflist (pkg/agent/flannel/setup_linux.go cniConf): flannel, portmap and bandwidth. */
export const K3S_CONFLIST = `{
  "name":"cbr0",
  "cniVersion":"1.0.0",
  "plugins":[
    { "type":"flannel", "delegate":{ "hairpinMode":true, "forceAddress":true, "isDefaultGateway":true } },
    { "type":"portmap", "capabilities":{ "portMappings":true } },
    { "type":"bandwidth", "capabilities":{ "bandwidth":true } }
  ]
}
`;

function setUnits(root: string, active: string[]) {
  const dir = path.join(shimDir(root), 'units');
  fs.rmSync(dir, { recursive: true, force: true });
  for (const u of active) write(shimDir(root), `units/${u}`, 'active\n');
}

function move(root: string, from: string, to: string) {
  const a = path.join(root, from);
  const b = path.join(root, to);
  fs.mkdirSync(path.dirname(b), { recursive: true });
  fs.renameSync(a, b);
}

const restore = (backend: 'nft' | 'legacy') => (backend === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore');

/** kube-proxy's chains beyond the few flannel-node.ts has: they are not the CNI's and must stay byte for byte. */
export function kubeProxyRules(): string {
  return [
    '*nat',
    ':KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]',
    ':KUBE-SEP-ABCDEF0123456789 - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-MARK-DROP - [0:0]',
    ':KUBE-PROXY-CANARY - [0:0]',
    '-A KUBE-SERVICES -d 10.43.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -j KUBE-SVC-NPX46M4PTMTKRN6Y',
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    '-A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 192.168.1.11:6443" -j KUBE-SEP-ABCDEF0123456789',
    '-A KUBE-SEP-ABCDEF0123456789 -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 192.168.1.11:6443',
    '-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000',
    'COMMIT',
    '*filter',
    ':KUBE-FIREWALL - [0:0]',
    ':KUBE-KUBELET-CANARY - [0:0]',
    ':KUBE-EXTERNAL-SERVICES - [0:0]',
    ':KUBE-PROXY-FIREWALL - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    '-A INPUT -j KUBE-FIREWALL',
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    '-A KUBE-NODEPORTS -m comment --comment "health check node port" -m tcp -p tcp --dport 30001 -j ACCEPT',
    'COMMIT',
    '',
  ].join('\n');
}

/**
 * kube-router's netpol as k3s embeds it (pkg/controllers/netpol): top-level KUBE-ROUTER-* chains
 * jumped to from INPUT/FORWARD/OUTPUT, a KUBE-POD-FW-* chain per pod with a REJECT for its IP, a
 * KUBE-NWPLCY-* chain per policy matching KUBE-SRC- and KUBE-DST- ipsets.
 */
export function netpolRules(podIp: string): string {
  const fw = 'KUBE-POD-FW-4E7JHXAYRTJHYQZ4';
  const pol = 'KUBE-NWPLCY-C2GDNZJJ5MEMRSPM';
  return [
    '*filter',
    ':KUBE-ROUTER-INPUT - [0:0]',
    ':KUBE-ROUTER-FORWARD - [0:0]',
    ':KUBE-ROUTER-OUTPUT - [0:0]',
    ':KUBE-NWPLCY-DEFAULT - [0:0]',
    `:${fw} - [0:0]`,
    `:${pol} - [0:0]`,
    '-I INPUT 1 -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT',
    '-I FORWARD 1 -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD',
    '-I OUTPUT 1 -m comment --comment "kube-router netpol - VEAAIY32XVBHCSCY" -j KUBE-ROUTER-OUTPUT',
    '-A KUBE-ROUTER-INPUT -d 10.43.0.0/16 -m comment --comment "allow traffic to primary/secondary cluster IP range" -j RETURN',
    `-A KUBE-ROUTER-FORWARD -d ${podIp}/32 -m comment --comment "rule to jump traffic destined to POD name:web namespace: default to chain ${fw}" -j ${fw}`,
    `-A KUBE-ROUTER-OUTPUT -s ${podIp}/32 -m comment --comment "rule to jump traffic from POD name:web namespace: default to chain ${fw}" -j ${fw}`,
    '-A KUBE-NWPLCY-DEFAULT -m comment --comment "rule to mark traffic matching a network policy" -j MARK --set-xmark 0x10000/0x10000',
    `-A ${fw} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "rule for stateful firewall for pod" -j ACCEPT`,
    `-A ${fw} -d ${podIp}/32 -m comment --comment "run through nw policy deny-web" -j ${pol}`,
    `-A ${fw} -m mark ! --mark 0x10000/0x10000 -m comment --comment "REJECT traffic destined for POD name:web namespace: default" -j REJECT --reject-with icmp-port-unreachable`,
    `-A ${pol} -m set --match-set KUBE-SRC-VIJHRSQ6BUQKJO5T src -m set --match-set KUBE-DST-NZKSTN4XMRJQLZEE dst -m comment --comment "rule to ACCEPT traffic from source pods to dest pods" -j MARK --set-xmark 0x10000/0x10000`,
    'COMMIT',
    '',
  ].join('\n');
}

export interface K3sOptions {
  role: 'server' | 'agent';
  /** A data dir other than /var/lib/rancher/k3s, set in /etc/rancher/k3s/config.yaml. */
  dataDir?: string;
  backend?: 'nft' | 'legacy';
  /** Lines added to config.yaml. */
  config?: string[];
}

export const K3S_DATA_DIR = '/var/lib/rancher/k3s';

/** A k3s node around a Flannel test node: k3s's conf dir, multi-call cni binary, unit, netpol. */
export function makeK3s(node: FlannelNode, o: K3sOptions): { dataDir: string; confDir: string; binDir: string; realBinDir: string } {
  const dataDir = o.dataDir ?? K3S_DATA_DIR;
  const rel = (p: string) => p.replace(/^\//, '');
  const confDir = `${dataDir}/agent/etc/cni/net.d`;
  fs.rmSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'));
  write(node.root, `${rel(confDir)}/10-flannel.conflist`, K3S_CONFLIST);
  write(node.root, `${rel(dataDir)}/agent/etc/flannel/net-conf.json`, '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}\n');
  if (o.role === 'server') write(node.root, `${rel(dataDir)}/server/token`, 'K10::server:secret\n', 0o600);
  const lines = [...(o.config ?? []), ...(o.dataDir ? [`data-dir: ${o.dataDir}`] : []), 'write-kubeconfig-mode: "0644"'];
  write(node.root, 'etc/rancher/k3s/config.yaml', lines.join('\n') + '\n', 0o600);
  write(node.root, 'usr/local/bin/k3s', '#!/bin/sh\n', 0o755);
  // data/<hash>/bin holds the multi-call `cni` and a symlink per plugin; data/current points at it
  // by an absolute path, which names a node path and must never be followed on the machine itself.
  const hashDir = `${rel(dataDir)}/data/8c5d4bb6d8b2e4a1`;
  write(node.root, `${hashDir}/bin/cni`, '#!/bin/sh\n', 0o755);
  for (const p of ['bridge', 'flannel', 'host-local', 'loopback', 'portmap', 'bandwidth'])
    fs.symlinkSync('cni', path.join(node.root, hashDir, 'bin', p));
  fs.symlinkSync(`${dataDir}/data/8c5d4bb6d8b2e4a1`, path.join(node.root, rel(dataDir), 'data/current'));
  setUnits(node.root, [o.role === 'server' ? 'k3s.service' : 'k3s-agent.service']);
  const backend = o.backend ?? 'nft';
  // The sets first: the rules match on them.
  inNs(
    node.ns,
    'ipset',
    ['restore'],
    [
      'create KUBE-SRC-VIJHRSQ6BUQKJO5T hash:ip family inet',
      `add KUBE-SRC-VIJHRSQ6BUQKJO5T ${node.pods[1]?.ip ?? '10.244.1.3'}`,
      'create KUBE-DST-NZKSTN4XMRJQLZEE hash:ip family inet',
      `add KUBE-DST-NZKSTN4XMRJQLZEE ${node.pods[0]?.ip ?? '10.244.1.2'}`,
      'create kube-router-pod-subnets hash:net family inet',
      // kube-router's IPv6 sets carry ipset's inet6: prefix.
      'create inet6:KUBE-DST-NZKSTN4XMRJQLZEE hash:ip family inet6',
      // kube-proxy's ipvs sets and the site's own: not kube-router's.
      'create KUBE-CLUSTER-IP hash:ip,port family inet',
      'create site-blocklist hash:ip family inet',
      '',
    ].join('\n'),
  );
  inNs(node.ns, restore(backend), ['--noflush'], kubeProxyRules());
  inNs(node.ns, restore(backend), ['--noflush'], netpolRules(node.pods[0]?.ip ?? '10.244.1.2'));

  return { dataDir, confDir, binDir: `${dataDir}/data/current/bin`, realBinDir: `${dataDir}/data/8c5d4bb6d8b2e4a1/bin` };
}

/** rke2 with Canal: Canal's conflist in /etc/cni/net.d, flannel.4096 (rke2's VNI), rke2-server or rke2-agent. */
export function makeRke2(node: FlannelNode, role: 'server' | 'agent') {
  fs.rmSync(path.join(node.root, 'etc/cni/net.d/10-flannel.conflist'));
  inNs(node.ns, 'ip', ['-batch', '-'], 'link set flannel.1 down\nlink set flannel.1 name flannel.4096\nlink set flannel.4096 up\n');
  write(node.root, 'etc/rancher/rke2/config.yaml', 'cni: canal\n', 0o600);
  write(node.root, 'usr/local/bin/rke2', '#!/bin/sh\n', 0o755);
  fs.mkdirSync(path.join(node.root, `var/lib/rancher/rke2/${role}`), { recursive: true });
  setUnits(node.root, [role === 'server' ? 'rke2-server.service' : 'rke2-agent.service']);
}

export const SNAP = '/var/snap/microk8s';
export const SNAP_REV = `${SNAP}/7229`;

/**
 * microk8s with Calico (call after addCalico): the conflist and kubeconfig in the snap's
 * args/cni-network, /etc/cni/net.d a symlink to it, /var/lib/calico a symlink into the snap, the
 * snap's daemons, and kubelite's FORWARD rules.
 */
export function makeMicrok8s(node: { ns: string; root: string }, backend: 'nft' | 'legacy' = 'nft') {
  const r = node.root;
  const rel = (p: string) => p.replace(/^\//, '');
  const args = `${rel(SNAP_REV)}/args/cni-network`;
  fs.mkdirSync(path.join(r, args), { recursive: true });
  for (const f of ['10-calico.conflist', 'calico-kubeconfig']) move(r, `etc/cni/net.d/${f}`, `${args}/${f}`);
  write(r, `${args}/cni.yaml`, '# the Calico manifest microk8s applies\n');
  fs.rmSync(path.join(r, 'etc/cni/net.d'), { recursive: true });
  fs.symlinkSync('7229', path.join(r, rel(SNAP), 'current'));
  fs.symlinkSync(`${SNAP}/current/args/cni-network`, path.join(r, 'etc/cni/net.d'));
  move(r, 'var/lib/calico', `${rel(SNAP_REV)}/var/lib/calico`);
  fs.symlinkSync(`${SNAP}/current/var/lib/calico`, path.join(r, 'var/lib/calico'));
  move(r, 'var/run/calico', `${rel(SNAP_REV)}/var/run/calico`);
  move(r, 'var/log/calico', `${rel(SNAP)}/common/var/log/calico`);
  write(r, `${rel(SNAP_REV)}/args/kubelet`, '--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock\n');
  write(r, `${rel(SNAP_REV)}/opt/cni/bin/calico`, '#!/bin/sh\n', 0o755);
  setUnits(r, ['snap.microk8s.daemon-kubelite.service', 'snap.microk8s.daemon-containerd.service']);
  const c = '-m comment --comment "generated for MicroK8s pods"';
  inNs(
    node.ns,
    restore(backend),
    ['--noflush'],
    `*filter\n-A FORWARD -s 172.20.0.0/16 ${c} -j ACCEPT\n-A FORWARD -d 172.20.0.0/16 ${c} -j ACCEPT\nCOMMIT\n`,
  );
}

/**
 * A PATH directory whose systemctl records, before each stop and start, whether a file and a link
 * still exist, then runs the recording shim: the call log then shows what was removed when.
 */
export function probingSystemctl(dir: string, file: string, link: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'systemctl'),
    `#!/usr/bin/env bash
case "$1" in stop|start)
  f=gone; [ -e ${JSON.stringify(file)} ] && f=present
  l=gone; ip link show ${JSON.stringify(link)} >/dev/null 2>&1 && l=present
  echo "probe $1 file=$f link=$l" >> "$SHIM_LOG";;
esac
exec ${JSON.stringify(path.join(SHIMS, 'systemctl'))} "$@"
`,
    { mode: 0o755 },
  );
  return dir;
}
