// The end-to-end node: a real containerd (CRI plugin, runc, overlayfs) with the real CNI plugins,
// in a network namespace and a mount namespace of its own, everything on disk under a temporary
// root laid out as on a node:
//   <root>/run            is /run inside (a shared bind mount, so the pod namespaces containerd
//                         mounts at /var/run/netns/cni-* also show at <root>/run/netns/cni-*, as
//                         cni-sweep --root sees them); containerd's socket, state and shim sockets,
//                         flannel's subnet.env, bird's control socket live there
//   <root>/var/lib        is /var/lib inside: /var/lib/cni (IPAM, libcni's result caches,
//                         flannel's scratch files) and containerd's root
//   <root>/etc/cni/net.d, <root>/opt/cni/bin   the runtime's CNI dirs, named in its config (this
//                         machine has no /etc/cni or /opt/cni to bind over without creating them)
// A process (the holder) keeps the mount namespace; every command for the node runs in it through
// nsenter. Pods get a cgroup parent of their own, so teardown finds every pause process.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CriClient, type PodSandboxConfig } from './cri/client.mjs';
import { FLANNEL_CONFLIST, PODMAN_CONFLIST } from './flannel-node.js';
import { CLI, SHIMS, scratch, type CliResult } from './harness.js';

export const E2E_SHIMS = path.resolve(__dirname, 'e2e-shims');
const FLANNEL_STANDIN = path.resolve(__dirname, 'e2e-cni/flannel');
export const SANDBOX_IMAGE = 'localhost/cni-sweep-e2e/pause:catatonit';
export const PLUGINS_DIR = '/usr/lib/cni';

export const UPLINK = { v4: '192.168.56.10', v6: '2001:db8:56::10', peer4: '192.168.56.11', peer6: '2001:db8:56::11' };
export const FLANNEL = {
  network: '10.244.0.0/16',
  subnet: '10.244.1.0/24',
  network6: 'fd00:10:244::/56',
  subnet6: 'fd00:10:244:1::/64',
  peerSubnet: '10.244.2.0/24',
  peerSubnet6: 'fd00:10:244:2::/64',
};

export interface RuntimeNode {
  ns: string;
  root: string;
  /** pid of the process holding the mount namespace (already in the network namespace). */
  holder: number;
  /** Parent cgroup (cgroupfs path) of every pod sandbox. */
  cgroup: string;
  endpoint: string;
  config: string;
  cri: CriClient;
  /** Directory the shims keep their log and unit states in. */
  shimState: string;
}

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** Runs a command in the node's network and mount namespaces. */
export function inNode(node: { holder: number }, cmd: string, args: string[], input?: string): string {
  return sh('nsenter', ['-t', String(node.holder), '-m', '-n', cmd, ...args], input);
}

export function shimEnv(node: RuntimeNode, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: [E2E_SHIMS, SHIMS, process.env.PATH].join(':'),
    SHIM_LOG: path.join(node.shimState, 'calls.log'),
    SHIM_STATE: node.shimState,
    E2E_CONTAINERD_CONFIG: node.config,
    NO_COLOR: '1',
    ...extra,
  };
}

/** The built CLI, run as on the node: in its namespaces, crictl/systemctl/kubectl stand-ins on PATH. */
export function runNodeCli(node: RuntimeNode, args: string[], env: Record<string, string> = {}, input = ''): CliResult {
  const log = path.join(node.shimState, 'calls.log');
  fs.writeFileSync(log, '');
  const r = spawnSync('nsenter', ['-t', String(node.holder), '-m', '-n', process.execPath, CLI, ...args], {
    encoding: 'utf8',
    input,
    env: shimEnv(node, env),
    maxBuffer: 256 * 1024 * 1024,
    timeout: 240_000,
  });
  const calls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls };
}

export const nodeArgs = (node: RuntimeNode) => [
  '--root',
  node.root,
  '--node',
  'node-1',
  '--kubeconfig',
  path.join(node.shimState, 'kubeconfig'),
];

/** The systemctl stand-in, as the node's operator would call it (recorded in the shim log too). */
export function systemctl(node: RuntimeNode, ...args: string[]): void {
  execFileSync('nsenter', ['-t', String(node.holder), '-m', '-n', path.join(E2E_SHIMS, 'systemctl'), ...args], {
    env: shimEnv(node),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function writeFile(root: string, p: string, content: string, mode = 0o644): void {
  const full = path.join(root, p);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  fs.writeFileSync(full, content, { mode });
  fs.chmodSync(full, mode);
}

function containerdConfig(root: string): string {
  return `version = 2
root = "${root}/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${root}/opt/containerd"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  # This machine's processes may not lower their OOM score (the sandbox's is -998): keep containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${root}/opt/cni/bin"
    conf_dir = "${root}/etc/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`;
}

/** An OCI image layout tarball whose one layer is the static catatonit binary as /pause. */
function pauseImage(dir: string): string {
  const blobs = path.join(dir, 'blobs/sha256');
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  fs.mkdirSync(blobs, { recursive: true });
  fs.copyFileSync('/usr/bin/catatonit', path.join(dir, 'rootfs/pause'));
  fs.chmodSync(path.join(dir, 'rootfs/pause'), 0o755);
  const layer = path.join(dir, 'layer.tar');
  sh('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-C',
    path.join(dir, 'rootfs'),
    '-cf',
    layer,
    'pause',
  ]);
  const blob = (p: string) => {
    const digest = sh('sha256sum', [p]).split(' ')[0]!;
    const size = fs.statSync(p).size;
    fs.renameSync(p, path.join(blobs, digest));
    return { digest: `sha256:${digest}`, size };
  };
  const json = (name: string, v: unknown) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, JSON.stringify(v));
    return blob(p);
  };
  const l = blob(layer);
  const config = json('config.json', {
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: ['/pause', '-P'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [l.digest] },
  });
  const manifest = json('manifest.json', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l }],
  });
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': SANDBOX_IMAGE, 'org.opencontainers.image.ref.name': 'catatonit' },
        },
      ],
    }),
  );
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const tarball = path.join(dir, 'pause.tar');
  sh('tar', ['-C', dir, '-cf', tarball, 'oci-layout', 'index.json', 'blobs']);
  return tarball;
}

// The holder: enters the network namespace, makes a private mount namespace, drops the copies of
// other namespaces' netns mounts (they would keep those namespaces alive), binds the root's /run
// and /var/lib, and waits.
function holderScript(root: string): string {
  return `set -e
findmnt -rn -t nsfs -o TARGET | while read -r t; do umount -l "$t" 2>/dev/null || true; done
mount --bind ${root}/run ${root}/run
mount --make-shared ${root}/run
mount --bind ${root}/run /run
mount --bind ${root}/var/lib /var/lib
echo ready
exec sleep infinity`;
}

let live: RuntimeNode[] = [];

/** A node with containerd running, the sandbox image imported, and no CNI config yet. */
export async function startNode(tag: string): Promise<RuntimeNode> {
  const { ns, root } = scratch(tag);
  for (const d of ['run', 'var/lib/cni', 'var/lib/containerd', 'etc/cni/net.d', 'opt/cni/bin', 'etc/containerd', 'etc/kubernetes'])
    fs.mkdirSync(path.join(root, d), { recursive: true });
  const shimState = path.join(root, '..', 'shims');
  fs.mkdirSync(path.join(shimState, 'units'), { recursive: true });
  fs.writeFileSync(path.join(shimState, 'units/kubelet.service'), 'active\n');
  fs.writeFileSync(path.join(shimState, 'kubeconfig'), 'apiVersion: v1\nkind: Config\n');
  for (const p of fs.readdirSync(PLUGINS_DIR)) fs.copyFileSync(path.join(PLUGINS_DIR, p), path.join(root, 'opt/cni/bin', p));
  fs.copyFileSync(FLANNEL_STANDIN, path.join(root, 'opt/cni/bin/flannel'));
  fs.chmodSync(path.join(root, 'opt/cni/bin/flannel'), 0o755);
  const config = path.join(root, 'etc/containerd/config.toml');
  fs.writeFileSync(config, containerdConfig(root));

  sh('ip', ['netns', 'add', ns]);
  const cgroup = `/${ns}`;
  const holderProc = spawn(
    'nsenter',
    [`--net=/run/netns/${ns}`, 'unshare', '-m', '--propagation', 'private', 'bash', '-c', holderScript(root)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    },
  );
  holderProc.unref();
  const node: RuntimeNode = {
    ns,
    root,
    holder: holderProc.pid!,
    cgroup,
    endpoint: `unix://${root}/run/containerd/containerd.sock`,
    config,
    cri: new CriClient(`unix://${root}/run/containerd/containerd.sock`),
    shimState,
  };
  live.push(node);
  await new Promise<void>((resolve, reject) => {
    holderProc.stdout.once('data', () => {
      resolve();
    });
    holderProc.once('exit', (code) => {
      reject(new Error(`mount namespace holder exited ${code}`));
    });
  });
  // nsenter execs unshare, which execs bash, which execs sleep: the same pid throughout.
  (holderProc.stdout as NodeJS.ReadableStream & { destroy(): void }).destroy();

  inNode(node, 'ip', ['link', 'set', 'lo', 'up']);
  inNode(node, 'ip', ['-batch', '-'], uplinkBatch());
  systemctl(node, 'start', 'containerd.service');
  inNode(node, 'ctr', [
    '--address',
    '/run/containerd/containerd.sock',
    '-n',
    'k8s.io',
    'images',
    'import',
    pauseImage(path.join(root, '..', 'image')),
  ]);
  return node;
}

function uplinkBatch(): string {
  return [
    // the uplink; its peer stays in the node too, a stand-in for the network behind it
    'link add eth0 type veth peer name eth0-peer',
    'link set eth0 mtu 1500 up',
    'link set eth0-peer up',
    `addr add ${UPLINK.v4}/24 dev eth0`,
    `addr add ${UPLINK.v6}/64 dev eth0 nodad`,
    'route add default via 192.168.56.1 dev eth0 onlink',
    'route add ::/0 via 2001:db8:56::1 dev eth0 onlink',
    '',
  ].join('\n');
}

// ---- Flannel (flanneld's own state, as flannel-io/flannel writes it) -------------------------

const FLANNEL_MAC = '0e:5a:7c:00:00:01';
const FLANNEL6_MAC = '0e:5a:7c:00:00:02';
export const PEER_VTEP = '0e:5a:7c:00:02:01';
export const PEER_VTEP6 = '0e:5a:7c:00:02:02';

/** flanneld's files, links, routes, neighbours, FDB and FLANNEL-* rules for a dual-stack VXLAN node, and kube-flannel.yml's conflist. */
export function installFlannel(node: RuntimeNode): void {
  // pkg/subnet/config.go WriteSubnetFile: the node's subnet with .1, MTU of flannel.1, IPMASQ.
  writeFile(
    node.root,
    'run/flannel/subnet.env',
    `FLANNEL_NETWORK=${FLANNEL.network}\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=${FLANNEL.network6}\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  );
  inNode(
    node,
    'ip',
    ['-batch', '-'],
    [
      // backend/vxlan: flannel.<VNI> on the uplink, VTEP port 8472, no learning; the v6 twin
      // flannel-v6.<VNI>; the lease's network address as /32 (/128); MTU = uplink - 50 (- 70).
      `link add flannel.1 address ${FLANNEL_MAC} type vxlan id 1 local ${UPLINK.v4} dev eth0 dstport 8472 nolearning`,
      'link set flannel.1 mtu 1450 up',
      'addr add 10.244.1.0/32 dev flannel.1',
      `link add flannel-v6.1 address ${FLANNEL6_MAC} type vxlan id 1 local ${UPLINK.v6} dev eth0 dstport 8472 nolearning`,
      'link set flannel-v6.1 mtu 1430 up',
      'addr add fd00:10:244:1::/128 dev flannel-v6.1 nodad',
      // another node's lease: route via its VTEP address onlink, a permanent neighbour, an FDB entry
      `route add ${FLANNEL.peerSubnet} via 10.244.2.0 dev flannel.1 onlink`,
      `neigh add 10.244.2.0 lladdr ${PEER_VTEP} dev flannel.1 nud permanent`,
      `route add ${FLANNEL.peerSubnet6} via fd00:10:244:2:: dev flannel-v6.1 onlink`,
      `neigh add fd00:10:244:2:: lladdr ${PEER_VTEP6} dev flannel-v6.1 nud permanent`,
      '',
    ].join('\n'),
  );
  inNode(
    node,
    'bridge',
    ['-batch', '-'],
    `fdb add ${PEER_VTEP} dev flannel.1 dst ${UPLINK.peer4} self permanent\nfdb add ${PEER_VTEP6} dev flannel-v6.1 dst ${UPLINK.peer6} self permanent\n`,
  );
  // pkg/trafficmngr/iptables: FLANNEL-POSTRTG and FLANNEL-FWD, tagged with their comments.
  const c = '-m comment --comment "flanneld masq"';
  const f = '-m comment --comment "flanneld forward"';
  const rules = (net: string, sub: string, multicast: string) =>
    [
      '*nat',
      ':FLANNEL-POSTRTG - [0:0]',
      `-A POSTROUTING ${c} -j FLANNEL-POSTRTG`,
      `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${sub} -d ${net} ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${net} -d ${sub} ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG ! -s ${net} -d ${sub} ${c} -j RETURN`,
      `-A FLANNEL-POSTRTG -s ${net} ! -d ${multicast} ${c} -j MASQUERADE --random-fully`,
      `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} ${c} -j MASQUERADE --random-fully`,
      'COMMIT',
      '*filter',
      ':FLANNEL-FWD - [0:0]',
      `-A FORWARD ${f} -j FLANNEL-FWD`,
      `-A FLANNEL-FWD -s ${net} ${f} -j ACCEPT`,
      `-A FLANNEL-FWD -d ${net} ${f} -j ACCEPT`,
      'COMMIT',
      '',
    ].join('\n');
  inNode(node, 'iptables-nft-restore', ['--noflush'], rules(FLANNEL.network, FLANNEL.subnet, '224.0.0.0/4'));
  inNode(node, 'ip6tables-nft-restore', ['--noflush'], rules(FLANNEL.network6, FLANNEL.subnet6, 'ff00::/8'));
  // An earlier flanneld image wrote the same rules through the legacy backend.
  inNode(node, 'iptables-legacy-restore', ['--noflush'], rules(FLANNEL.network, FLANNEL.subnet, '224.0.0.0/4'));
  writeFile(node.root, 'etc/cni/net.d/10-flannel.conflist', FLANNEL_CONFLIST);
}

/** The site's own firewall rules, which every run must leave as they are. */
export function installSiteRules(node: RuntimeNode): void {
  const site = [
    '*filter',
    ':SITE-FW - [0:0]',
    '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
    '-A FORWARD -j SITE-FW',
    '-A SITE-FW -d 192.168.50.0/24 -j DROP',
    'COMMIT',
    '',
  ];
  inNode(node, 'iptables-nft-restore', ['--noflush'], site.join('\n'));
  inNode(node, 'iptables-legacy-restore', ['--noflush'], site.join('\n'));
  inNode(node, 'ip6tables-nft-restore', ['--noflush'], ['*filter', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', 'COMMIT', ''].join('\n'));
}

// ---- pods through the CRI ---------------------------------------------------------------------

export interface Pod {
  id: string;
  name: string;
  hostPort?: number;
}

export async function runPod(node: RuntimeNode, name: string, hostPort?: number): Promise<Pod> {
  const config: PodSandboxConfig = {
    metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
    hostname: name,
    logDirectory: path.join(node.root, 'var/log/pods', name),
    portMappings: hostPort ? [{ protocol: 'TCP', containerPort: 80, hostPort }] : [],
    labels: { app: name },
    linux: { cgroupParent: node.cgroup, securityContext: { namespaceOptions: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
  };
  // Pods start side by side, and portmap 1.1 creates its shared chains without a lock: two first
  // hostPort pods can race ("unable to create chain CNI-HOSTPORT-SETMARK"). The runtime then removes
  // the sandbox, and kubelet would simply try again; so does this.
  for (let attempt = 1; ; attempt++) {
    try {
      const id = await node.cri.runPodSandbox(config);
      return { id, name, hostPort };
    } catch (e) {
      if (attempt >= 3 || !/failed to setup network for sandbox/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** The pod's addresses as the runtime reports them. */
export async function podIps(node: RuntimeNode, id: string): Promise<string[]> {
  const { status } = await node.cri.podSandboxStatus(id);
  return [status.network?.ip, ...(status.network?.additionalIps ?? []).map((a) => a.ip)].filter((x): x is string => !!x);
}

// ---- podman's network: the real plugins, called as podman's libcni calls them -------------------

export interface PodmanContainer {
  id: string;
  netns: string;
}

/** One podman container on 87-podman-bridge.conflist: its own netns (and a process in it), the plugin chain, libcni's cache. */
export function podmanContainer(node: RuntimeNode, n: number, hostPort?: number): PodmanContainer {
  if (!fs.existsSync(path.join(node.root, 'etc/cni/net.d/87-podman-bridge.conflist')))
    writeFile(node.root, 'etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
  const id = String(n).repeat(8).padEnd(64, 'c').slice(0, 64);
  const netns = `netns-${id.slice(0, 8)}-podman-${n}`;
  inNode(node, 'ip', ['netns', 'add', netns]);
  // the container's process, so the namespace is in use as a running container's is
  spawn('nsenter', ['-t', String(node.holder), '-m', '--', 'nsenter', `--net=/run/netns/${netns}`, 'sleep', 'infinity'], {
    stdio: 'ignore',
    detached: true,
  }).unref();
  const list = JSON.parse(PODMAN_CONFLIST) as { name: string; cniVersion: string; plugins: Array<Record<string, unknown>> };
  const capabilityArgs = hostPort ? { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp', hostIP: '' }] } : {};
  let prev: unknown;
  for (const plugin of list.plugins) {
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const rc = Object.fromEntries(Object.entries(capabilityArgs).filter(([k]) => caps[k]));
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
    if (prev) conf.prevResult = prev;
    const out = inNode(
      node,
      'env',
      [
        'CNI_COMMAND=ADD',
        `CNI_CONTAINERID=${id}`,
        `CNI_NETNS=/run/netns/${netns}`,
        'CNI_IFNAME=eth0',
        `CNI_PATH=${node.root}/opt/cni/bin`,
        path.join(node.root, 'opt/cni/bin', String(plugin.type)),
      ],
      JSON.stringify(conf),
    );
    prev = JSON.parse(out);
  }
  // libcni's cacheAdd: /var/lib/cni/results/<network>-<container id>-<ifname>
  writeFile(
    node.root,
    `var/lib/cni/results/${list.name}-${id}-eth0`,
    JSON.stringify({
      kind: 'cniCacheV1',
      containerId: id,
      config: Buffer.from(PODMAN_CONFLIST).toString('base64'),
      ifName: 'eth0',
      networkName: list.name,
      ...(hostPort ? { capabilityArgs } : {}),
      result: prev,
    }),
    0o600,
  );
  return { id, netns };
}

// ---- teardown -----------------------------------------------------------------------------------

function nsInode(pid: number | string, kind: string): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return null;
  }
}

function cgroupDirs(node: RuntimeNode): string[] {
  const out: string[] = [];
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const d = path.join('/sys/fs/cgroup', h, node.cgroup);
    if (fs.existsSync(d)) out.push(d);
  }
  return out;
}

function pidsOf(node: RuntimeNode, mnt: string | null): number[] {
  const pids = new Set<number>();
  if (mnt) for (const p of fs.readdirSync('/proc')) if (/^\d+$/.test(p) && nsInode(p, 'mnt') === mnt) pids.add(Number(p));
  // A sandbox's cgroup goes away when its last process dies, in the middle of this walk too.
  const entries = (d: string) => {
    try {
      return fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  const walk = (d: string) => {
    for (const e of entries(d)) if (e.isDirectory()) walk(path.join(d, e.name));
    try {
      for (const p of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.add(Number(p));
    } catch {
      /* gone */
    }
  };
  for (const d of cgroupDirs(node)) walk(d);
  pids.delete(process.pid);
  return [...pids];
}

/** Kills everything the node started (containerd, shims, pause and podman processes, bird, the holder) and removes its namespaces, cgroups and root. */
export async function stopNode(node: RuntimeNode): Promise<void> {
  node.cri.close();
  const mnt = node.holder ? nsInode(node.holder, 'mnt') : null;
  for (let i = 0; i < 100; i++) {
    const pids = pidsOf(node, mnt);
    if (!pids.length) break;
    for (const p of pids)
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    await new Promise((r) => setTimeout(r, 50));
  }
  const rmdirs = (d: string) => {
    let list: fs.Dirent[] = [];
    try {
      list = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return; // gone already
    }
    for (const e of list) if (e.isDirectory()) rmdirs(path.join(d, e.name));
    try {
      fs.rmdirSync(d);
    } catch {
      /* a controller's directory may take a moment to empty */
    }
  };
  for (const d of cgroupDirs(node)) rmdirs(d);
  spawnSync('ip', ['netns', 'delete', node.ns]);
  // Nothing is mounted under the root outside the node's mount namespace, which died with its last process.
  fs.rmSync(path.join(node.root, '..'), { recursive: true, force: true });
  live = live.filter((n) => n !== node);
}

/** For afterEach: tears down every node still up. */
export async function stopAllNodes(): Promise<void> {
  for (const n of [...live]) await stopNode(n);
}

// ---- Calico's routes from the real BIRD ------------------------------------------------------

/** Calico's BIRD routes on this node: the blackhole for its own IPAM block, and other nodes' blocks. */
export const CALICO_BLOCKS = { own: '172.22.5.0/26', others: ['172.22.9.0/26', '172.22.13.0/26'] };

/**
 * Runs bird2 in the node as calico-node runs it: a kernel protocol with `persist` (calico's
 * bird.cfg template: routes stay when BIRD stops) exporting the node's block as a blackhole and
 * other nodes' blocks via their addresses, so the kernel holds them as `proto bird`. Returns once
 * the routes are in; stopBird then ends BIRD the way deleting calico-node's DaemonSet does.
 */
export async function startBird(node: RuntimeNode): Promise<void> {
  const [a, b] = CALICO_BLOCKS.others;
  writeFile(
    node.root,
    'etc/calico/confd/config/bird.cfg',
    `router id ${UPLINK.v4};
protocol device { scan time 10; }
protocol kernel {
  ipv4 { import none; export all; };
  metric 0; # calico-node's BIRD 1.6 installs its routes without a metric; bird2 defaults to 32
  learn;
  persist;
  scan time 2;
  graceful restart;
}
protocol static {
  ipv4;
  route ${CALICO_BLOCKS.own} blackhole;
  route ${a} via ${UPLINK.peer4};
  route ${b} via 192.168.56.12;
}
`,
  );
  fs.mkdirSync(path.join(node.root, 'run/calico'), { recursive: true });
  spawn(
    'nsenter',
    [
      '-t',
      String(node.holder),
      '-m',
      '-n',
      'bird',
      '-f',
      '-c',
      path.join(node.root, 'etc/calico/confd/config/bird.cfg'),
      '-s',
      '/run/calico/bird.ctl',
    ],
    { stdio: 'ignore', detached: true },
  ).unref();
  for (let i = 0; i < 100; i++) {
    if (birdRoutes(node).length === 3) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`bird did not export its routes: ${inNode(node, 'ip', ['route', 'show'])}`);
}

/** The kernel's routes BIRD made, as `ip route` prints them. */
export function birdRoutes(node: RuntimeNode): string[] {
  return inNode(node, 'ip', ['route', 'show', 'table', 'all'])
    .split('\n')
    .filter((l) => / proto bird\b/.test(l));
}

export async function stopBird(node: RuntimeNode): Promise<void> {
  inNode(node, 'birdc', ['-s', '/run/calico/bird.ctl', 'down']);
  for (let i = 0; i < 100; i++) {
    if (spawnSync('nsenter', ['-t', String(node.holder), '-m', '-n', 'test', '-S', '/run/calico/bird.ctl']).status !== 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('bird did not stop');
}
