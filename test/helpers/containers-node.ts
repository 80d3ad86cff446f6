// Docker's and podman's containers beside a Flannel node's pods (for tests and the benchmark): their
// host veths have peers in other network namespaces, which is what makes cni-sweep's netns phase
// tell the CNI's namespaces from theirs.
//
// - docker: containers on docker0 (the Flannel node has the bridge), host veths named veth + 7 hex
//   (libnetwork's random names), each peer in a namespace bind-mounted at
//   <root>/var/run/docker/netns/<12 hex> (docker's SandboxKey), not under /run/netns; docker's
//   nat/filter chains (DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2) and its masquerade rule.
// - podman 4+ with the CNI backend: bridge cni-podman0 (10.88.0.0/16, containers/common
//   libnetwork/cni), namespaces at <root>/run/netns/netns-<uuid> (containers/common pkg/netns
//   getRandomNetnsName), host veths named by the CNI bridge plugin (veth + 8 hex), the bridge
//   plugin's per-container CNI-<hash> masquerade chain, host-local IPAM and the result cache.
// - optionally cni-* namespaces of another runtime whose containers are on cni-podman0 (as runtimes
//   built on the CNI plugins' netns code name theirs): a cni-* name whose pod does not belong to
//   Flannel, which cni-sweep must keep.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inNs, sh, write, type Backend, type FlannelNode } from './flannel-node.js';

export interface ContainersOptions {
  docker?: number;
  podman?: number;
  /** cni-* namespaces whose pod interface pairs with a veth on cni-podman0. */
  otherCni?: number;
  /** The node's iptables backend (where docker's and podman's rules go). */
  backend?: Backend;
}

export interface Containers {
  /** Host veths, by owner. */
  dockerVeths: string[];
  podmanVeths: string[];
  otherVeths: string[];
  /** Namespace files (absolute paths). */
  dockerNetns: string[];
  podmanNetns: string[];
  otherNetns: string[];
}

const hex = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);
const uuid = (s: string) => {
  const h = hex(s, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

/** A network namespace bind-mounted at `file`, and the ip -batch lines pairing `veth` on `bridge` with eth0 in it. */
function container(file: string, veth: string, bridge: string, lines: string[]) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
  sh('unshare', [`--net=${file}`, 'true']);
  lines.push(`link add ${veth} type veth peer name eth0 netns ${file}`, `link set ${veth} master ${bridge}`, `link set ${veth} up`);
}

export function addContainers(node: FlannelNode, o: ContainersOptions = {}): Containers {
  const out: Containers = { dockerVeths: [], podmanVeths: [], otherVeths: [], dockerNetns: [], podmanNetns: [], otherNetns: [] };
  const lines: string[] = ['link add cni-podman0 type bridge', 'link set cni-podman0 up', 'addr add 10.88.0.1/16 dev cni-podman0'];
  const inside: Array<{ file: string; ip: string; gw: string }> = [];
  const nat: string[] = ['*nat', ':DOCKER - [0:0]'];
  const filter: string[] = [
    '*filter',
    ':DOCKER - [0:0]',
    ':DOCKER-ISOLATION-STAGE-1 - [0:0]',
    ':DOCKER-ISOLATION-STAGE-2 - [0:0]',
    ':DOCKER-USER - [0:0]',
  ];
  nat.push(
    '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
    '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
    '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
    '-A DOCKER -i docker0 -j RETURN',
  );
  filter.push(
    '-A FORWARD -j DOCKER-USER',
    '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
    '-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-A FORWARD -o docker0 -j DOCKER',
    '-A FORWARD -i docker0 ! -o docker0 -j ACCEPT',
    '-A FORWARD -i docker0 -o docker0 -j ACCEPT',
    '-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2',
    '-A DOCKER-ISOLATION-STAGE-1 -j RETURN',
    '-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP',
    '-A DOCKER-ISOLATION-STAGE-2 -j RETURN',
    '-A DOCKER-USER -j RETURN',
  );
  for (let i = 0; i < (o.docker ?? 0); i++) {
    const id = hex(`${node.ns}-docker-${i}`, 12);
    const file = path.join(node.root, 'var/run/docker/netns', id);
    const veth = `veth${hex(`${id}-veth`, 7)}`;
    const ip = `172.17.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`;
    container(file, veth, 'docker0', lines);
    inside.push({ file, ip: `${ip}/16`, gw: '172.17.0.1' });
    out.dockerVeths.push(veth);
    out.dockerNetns.push(file);
    if (i < 2) nat.push(`-A DOCKER ! -i docker0 -p tcp -m tcp --dport ${9000 + i} -j DNAT --to-destination ${ip}:80`);
  }
  const podman = (i: number, name: string, kind: 'podman' | 'other') => {
    const cid = hex(`${node.ns}-${kind}-${i}`, 64);
    const file = path.join(node.root, 'run/netns', name);
    const veth = `veth${hex(`${cid}-veth`, 8)}`;
    const n = (kind === 'podman' ? 10 : 200) + i;
    const ip = `10.88.${Math.floor(n / 256)}.${n % 256}`;
    container(file, veth, 'cni-podman0', lines);
    inside.push({ file, ip: `${ip}/16`, gw: '10.88.0.1' });
    const chain = `CNI-${createHash('sha512').update(`podman${cid}`).digest('hex').slice(0, 24)}`;
    const cm = `-m comment --comment "name: \\"podman\\" id: \\"${cid}\\""`;
    nat.push(`:${chain} - [0:0]`, `-A POSTROUTING -s ${ip}/32 ${cm} -j ${chain}`);
    nat.push(`-A ${chain} -d 10.88.0.0/16 ${cm} -j ACCEPT`, `-A ${chain} ! -d 224.0.0.0/4 ${cm} -j MASQUERADE`);
    write(node.root, `var/lib/cni/networks/podman/${ip}`, `${cid}\r\neth0`, 0o600);
    write(
      node.root,
      `var/lib/cni/results/podman-${cid}-eth0`,
      JSON.stringify({ kind: 'cniCacheV1', containerId: cid, ifName: 'eth0', networkName: 'podman', netns: `/run/netns/${name}` }),
      0o600,
    );
    return { file, veth };
  };
  for (let i = 0; i < (o.podman ?? 0); i++) {
    const c = podman(i, `netns-${uuid(`${node.ns}-podman-${i}`)}`, 'podman');
    out.podmanVeths.push(c.veth);
    out.podmanNetns.push(c.file);
  }
  for (let i = 0; i < (o.otherCni ?? 0); i++) {
    const c = podman(i, `cni-${uuid(`${node.ns}-other-${i}`)}`, 'other');
    out.otherVeths.push(c.veth);
    out.otherNetns.push(c.file);
  }
  inNs(node.ns, 'ip', ['-batch', '-'], lines.join('\n') + '\n');
  for (const c of inside)
    sh('nsenter', [
      `--net=${c.file}`,
      'sh',
      '-c',
      `ip link set eth0 up && ip addr add ${c.ip} dev eth0 && ip route add default via ${c.gw}`,
    ]);
  const restore = (o.backend ?? 'nft') === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore';
  inNs(node.ns, restore, ['--noflush'], [...nat, 'COMMIT', ...filter, 'COMMIT', ''].join('\n'));
  return out;
}

/** Unmounts the containers' namespace files outside <root>/run/netns (destroyFlannelNode does those inside). */
export function removeContainers(node: { root: string }): void {
  const dir = path.join(node.root, 'var/run/docker/netns');
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    try {
      sh('umount', ['--lazy', path.join(dir, f)]);
    } catch {
      /* not mounted */
    }
  }
}
