// What an operator removes from a dirty Flannel node, found the way an operator finds it
// (`ip -j link`, `ip -j route`, `iptables-save`, `nft list tables`, `ls`), and the two shell
// scripts that remove it: the manual one (one command per object, as the guides do it) and the
// batched floor (one command per kind of object). Independent of src/: the benchmark compares
// cni-sweep against these, so they must not share its code.
import fs from 'node:fs';
import path from 'node:path';
import { inNs, type FlannelNode } from '../test/helpers/flannel-node.js';

/** What belongs to Flannel on the node: every object the manual and the floor scripts remove. */
export interface Owned {
  /** Files and directories (absolute, under the node's root) that go whole. */
  paths: string[];
  /** Every non-directory inside `paths`, and the directories, deepest first. */
  files: string[];
  dirs: string[];
  /** Pod netns files (bind mounts) under <root>/run/netns. */
  netns: string[];
  /** Bridge ports first (veths on cni0), then the devices. */
  ports: string[];
  devices: string[];
  /** `ip route` arguments after "del", one route each, that outlive the deleted devices. */
  routes: string[];
  /** Per iptables backend and family: the tables with -D rules and the owned chains. */
  firewall: Array<{ bin: string; restore: string; tables: Array<{ table: string; deletes: string[]; chains: string[] }> }>;
  /** Native nftables tables, "family name". */
  nftTables: string[];
}

const FLANNEL_LINE = /FLANNEL|flanneld|cbr0/;

// ---- CIDR containment (v4 and v6), enough for route selection ----
function parseAddr(a: string): { v6: boolean; n: bigint } | null {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(a)) return { v6: false, n: a.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  if (!a.includes(':')) return null;
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  if (groups.length !== 8) return null;
  return { v6: true, n: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
}

function parseCidr(c: string): { v6: boolean; n: bigint; len: number } | null {
  const [a, l] = c.split('/');
  const p = parseAddr(a!);
  if (!p) return null;
  return { ...p, len: l === undefined ? (p.v6 ? 128 : 32) : Number(l) };
}

function inside(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  if (!i || !o || i.v6 !== o.v6 || i.len < o.len) return false;
  const bits = BigInt(o.v6 ? 128 : 32);
  const shift = bits - BigInt(o.len);
  return i.n >> shift === o.n >> shift;
}

function walkFiles(full: string, files: string[], dirs: string[]): void {
  const st = fs.lstatSync(full);
  if (!st.isDirectory()) {
    files.push(full);
    return;
  }
  for (const e of fs.readdirSync(full)) walkFiles(path.join(full, e), files, dirs);
  dirs.push(full);
}

/** Finds what Flannel owns on the node, reading it like an operator would. Not timed. */
export function discover(node: FlannelNode): Owned {
  const r = (p: string) => path.join(node.root, p);
  const paths: string[] = [];
  const add = (p: string) => fs.existsSync(r(p)) && paths.push(r(p));
  add('etc/cni/net.d/10-flannel.conflist');
  add('run/flannel');
  add('var/lib/cni/flannel');
  add('var/lib/cni/networks/cbr0');
  for (const f of fs.readdirSync(r('var/lib/cni/results')).sort()) if (f.startsWith('cbr0-')) add(`var/lib/cni/results/${f}`);
  const files: string[] = [];
  const dirs: string[] = [];
  for (const p of paths) walkFiles(p, files, dirs);

  const netnsDir = r('run/netns');
  const netns = fs.existsSync(netnsDir)
    ? fs
        .readdirSync(netnsDir)
        .filter((f) => /^cni-[0-9a-f-]+$/.test(f))
        .sort()
        .map((f) => path.join(netnsDir, f))
    : [];

  const links = JSON.parse(inNs(node.ns, 'ip', ['-j', '-d', 'link', 'show'])) as Array<{
    ifname: string;
    master?: string;
    linkinfo?: { info_kind?: string };
  }>;
  const ports = links.filter((l) => l.master === 'cni0' && l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
  const devices = links.filter((l) => l.ifname === 'cni0' || /^flannel(\.|-v6\.|-wg|0$)/.test(l.ifname)).map((l) => l.ifname);
  const dying = new Set([...ports, ...devices]);

  const podNets = [node.network, 'fd00:10:244::/56'];
  const routes: string[] = [];
  for (const fam of ['-4', '-6']) {
    const rs = JSON.parse(inNs(node.ns, 'ip', [fam, '-j', 'route', 'show', 'table', 'all'])) as Array<{
      dst: string;
      gateway?: string;
      dev?: string;
      table?: string;
      type?: string;
    }>;
    for (const rt of rs) {
      if (rt.dst === 'default' || !rt.gateway || (rt.dev && dying.has(rt.dev))) continue;
      if (!podNets.some((n) => inside(rt.dst, n))) continue;
      routes.push(
        [
          rt.dst,
          'via',
          rt.gateway,
          ...(rt.dev ? ['dev', rt.dev] : []),
          ...(rt.table && rt.table !== 'main' ? ['table', rt.table] : []),
        ].join(' '),
      );
    }
  }

  // Flannel's chains: FLANNEL-*, and the CNI-* chains its pods' rules jump to (the bridge plugin's
  // per-pod masquerade chain, portmap's CNI-DN-*, all tagged with the network name cbr0); portmap's
  // shared CNI-HOSTPORT-* chains too, unless another network (podman's) also has rules in them.
  const firewall: Owned['firewall'] = [];
  for (const [bin, restore] of [
    ['iptables-nft', 'iptables-nft-restore'],
    ['ip6tables-nft', 'ip6tables-nft-restore'],
    ['iptables-legacy', 'iptables-legacy-restore'],
    ['ip6tables-legacy', 'ip6tables-legacy-restore'],
  ]) {
    const dump = inNs(node.ns, `${bin}-save`, []);
    const lines = dump.split('\n');
    const shared = lines.some((l) => /name: \\"(?!cbr0\\")/.test(l));
    const mine = new Set<string>();
    for (const l of lines) {
      const chain = l.startsWith(':') ? l.slice(1).split(' ')[0]! : '';
      if (/^FLANNEL-/.test(chain) || (!shared && /^CNI-HOSTPORT-/.test(chain))) mine.add(chain);
      const jump = / -j (CNI-\S+)/.exec(l);
      if (l.startsWith('-A ') && FLANNEL_LINE.test(l) && jump && !jump[1]!.startsWith('CNI-HOSTPORT-')) mine.add(jump[1]!);
    }
    const tables: Owned['firewall'][number]['tables'] = [];
    let cur: Owned['firewall'][number]['tables'][number] | null = null;
    for (const line of lines) {
      if (line.startsWith('*')) {
        cur = { table: line.slice(1), deletes: [], chains: [] };
        tables.push(cur);
      } else if (cur && line.startsWith(':')) {
        const chain = line.slice(1).split(' ')[0]!;
        if (mine.has(chain)) cur.chains.push(chain);
      } else if (cur && line.startsWith('-A ')) {
        const chain = line.split(' ')[1]!;
        const jump = / -j (\S+)/.exec(line)?.[1];
        // Rules inside Flannel's chains go with -F; elsewhere, only Flannel's own rules and jumps to its chains.
        if (!mine.has(chain) && (FLANNEL_LINE.test(line) || (jump !== undefined && mine.has(jump))))
          cur.deletes.push(`-D ${line.slice(3)}`);
      }
    }
    const owned = tables.filter((t) => t.deletes.length || t.chains.length);
    if (owned.length) firewall.push({ bin: bin!, restore: restore!, tables: owned });
  }

  const nftTables = inNs(node.ns, 'nft', ['list', 'tables'])
    .split('\n')
    .map((l) => l.replace(/^table /, '').trim())
    .filter((t) => /^(ip flannel-ipv4|ip6 flannel-ipv6)$/.test(t));

  return { paths, files, dirs, netns, ports, devices, routes, firewall, nftTables };
}

/** Quote one word for bash. Paths and device names here never need it, but stay safe. */
const q = (s: string) => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The manual sequence, as the guides script it: one command per object. Same order as cni-sweep's
 * phases (config, state, interfaces, routes, firewall, netns). iptables rules are pasted from
 * iptables-save: its quoting is bash's.
 */
export function manualScript(o: Owned): string {
  const out = ['set -e'];
  for (const f of o.files) out.push(`rm -f ${q(f)}`);
  for (const d of o.dirs) out.push(`rmdir ${q(d)}`);
  for (const l of [...o.ports, ...o.devices]) out.push(`ip link delete ${q(l)}`);
  for (const rt of o.routes) out.push(`ip ${rt.includes(':') ? '-6' : '-4'} route del ${rt}`);
  for (const fw of o.firewall) {
    for (const t of fw.tables) {
      for (const d of t.deletes) out.push(`${fw.bin} -t ${t.table} ${d}`);
      for (const c of t.chains) out.push(`${fw.bin} -t ${t.table} -F ${c}`);
      for (const c of t.chains) out.push(`${fw.bin} -t ${t.table} -X ${c}`);
    }
  }
  for (const t of o.nftTables) out.push(`nft delete table ${t}`);
  // What `ip netns delete` does for each: a lazy unmount, then unlink.
  for (const n of o.netns) out.push(`umount --lazy ${q(n)}`, `rm -f ${q(n)}`);
  return out.join('\n') + '\n';
}

function heredoc(cmd: string, body: string[]): string {
  return `${cmd} <<'CNI_SWEEP_BENCH_EOF'\n${body.join('\n')}\nCNI_SWEEP_BENCH_EOF`;
}

/**
 * The batched floor: one `rm -rf` with every path, one `ip -batch -` for links and routes, one
 * `iptables-restore --noflush -w` per backend and family, one `nft -f -`, one umount and one rm
 * for the pod namespaces. With `group`, the pod veths, cni0 and the flannel devices are moved into
 * one unused link group and deleted with a single `link delete group` (one kernel unregister batch
 * instead of one per link).
 */
export function floorScript(o: Owned, opts: { group?: number } = {}): string {
  const out = ['set -e'];
  if (o.paths.length) out.push(`rm -rf -- ${o.paths.map(q).join(' ')}`);
  const ipLines: string[] = [];
  if (opts.group !== undefined && o.ports.length + o.devices.length) {
    for (const l of [...o.ports, ...o.devices]) ipLines.push(`link set dev ${l} group ${opts.group}`);
    ipLines.push(`link delete group ${opts.group}`);
  } else for (const l of [...o.ports, ...o.devices]) ipLines.push(`link delete ${l}`);
  for (const rt of o.routes) ipLines.push(`route del ${rt}`);
  if (ipLines.length) out.push(heredoc('ip -batch -', ipLines));
  for (const fw of o.firewall) {
    const body: string[] = [];
    for (const t of fw.tables)
      body.push(`*${t.table}`, ...t.deletes, ...t.chains.map((c) => `-F ${c}`), ...t.chains.map((c) => `-X ${c}`), 'COMMIT');
    out.push(heredoc(`${fw.restore} --noflush -w`, body));
  }
  if (o.nftTables.length)
    out.push(
      heredoc(
        'nft -f -',
        o.nftTables.map((t) => `delete table ${t}`),
      ),
    );
  if (o.netns.length) out.push(`umount --lazy -- ${o.netns.map(q).join(' ')}`, `rm -f -- ${o.netns.map(q).join(' ')}`);
  return out.join('\n') + '\n';
}

/** How many commands a script runs (for the report). */
export function commandCount(o: Owned, kind: 'manual' | 'floor'): number {
  if (kind === 'floor') return (o.paths.length ? 1 : 0) + 1 + o.firewall.length + (o.nftTables.length ? 1 : 0) + (o.netns.length ? 2 : 0);
  const fw = o.firewall.reduce((n, f) => n + f.tables.reduce((m, t) => m + t.deletes.length + 2 * t.chains.length, 0), 0);
  return (
    o.files.length + o.dirs.length + o.ports.length + o.devices.length + o.routes.length + fw + o.nftTables.length + 2 * o.netns.length
  );
}

// ---------------------------------------------------------------------------------------------
// The k3s and rke2 killall scripts' network part, as a user's alternative. Their commands, in their
// order, with the node's paths under its temporary root; run inside the node's network namespace
// (nsenter --net), never on the host. Left out: stopping the services and killing the containerd
// shims (the bench node runs neither), and unmounting /run/k3s and the kubelet's directories.
//
// k3s: install.sh's create_killall() (it writes k3s-killall.sh), k3s-io/k3s commit
// 0136cf258954a458da1404858396342724b93d24. rke2: bundle/bin/rke2-killall.sh, rancher/rke2 commit
// 6ce1a8019e9d0b81eb7a715edbc2b8ac12d26da0. Their `ip netns show | grep cni- | xargs ip netns
// delete` (k3s) reads the real /run/netns, not the node's: it becomes the same listing of
// <root>/run/netns and what `ip netns delete` does (lazy unmount, unlink). rke2's
// `[ -d /sys/class/net/nodelocaldns ]` reads the host's sysfs, not the node's: it becomes `ip link
// show nodelocaldns`. Both scripts run under /bin/sh, without `set -e`, as installed.

/** k3s-killall.sh's network part, for the node whose root is `root`. */
export function k3sKillallScript(root: string): string {
  const R = q(root);
  return `R=${R}
set -x

remove_interfaces() {
    # Delete network interface(s) that match 'master cni0'
    ip link show 2>/dev/null | grep 'master cni0' | while read ignore iface ignore; do
        iface=\${iface%%@*}
        [ -z "$iface" ] || ip link delete $iface
    done

    # Delete cni related interfaces
    ip link delete cni0
    ip link delete flannel.1
    ip link delete flannel-v6.1
    ip link delete kube-ipvs0
    ip link delete flannel-wg
    ip link delete flannel-wg-v6

    # Restart tailscale
    if [ -n "$(command -v tailscale)" ]; then
        tailscale set --advertise-routes=
    fi
}

do_unmount_and_remove() {
    set +x
    while read -r _ path _; do
        case "$path" in $1*) echo "$path" ;; esac
    done < /proc/self/mounts | sort -r | xargs -r -t -n 1 sh -c 'umount -f "$0" && rm -rf "$0"'
    set -x
}

do_unmount_and_remove "$R/run/netns/cni-"

# Remove CNI namespaces
export NETNS_DIR="$R/run/netns"
ls "$NETNS_DIR" 2>/dev/null | grep cni- | xargs -r -t -n 1 sh -c 'umount -l "$NETNS_DIR/$0"; rm -f "$NETNS_DIR/$0"'

remove_interfaces

rm -rf "$R/var/lib/cni/"
iptables-save | grep -v KUBE- | grep -v CNI- | grep -iv flannel | iptables-restore
ip6tables-save | grep -v KUBE- | grep -v CNI- | grep -iv flannel | ip6tables-restore
`;
}

/** rke2-killall.sh's network part, for the node whose root is `root`. */
export function rke2KillallScript(root: string): string {
  const R = q(root);
  return `R=${R}
do_unmount_and_remove() {
    { set +x; } 2>/dev/null
    MOUNTS=
    while read ignore mount ignore; do
        MOUNTS="\${mount}\\n\${MOUNTS}"
    done </proc/self/mounts
    MOUNTS=$(printf \${MOUNTS} | grep "^$1" | sort -r)
    if [ -n "\${MOUNTS}" ]; then
        set -x
        umount -- \${MOUNTS} && rm -rf --one-file-system -- \${MOUNTS}
    else
        set -x
    fi
}

set -x

do_unmount_and_remove "$R/run/netns/cni-"

# Delete network interface(s) that match 'master cni0'
ip link show 2>/dev/null | grep 'master cni0' | while read ignore iface ignore; do
    iface=\${iface%%@*}
    [ -z "$iface" ] || ip link delete $iface
done
ip link delete cni0
ip link delete flannel.1
ip link delete flannel.4096
ip link delete flannel-v6.1
ip link delete flannel-v6.4096
ip link delete flannel-wg
ip link delete flannel-wg-v6
ip link delete vxlan.calico
ip link delete vxlan-v6.calico
ip link delete cilium_vxlan
ip link delete cilium_net
ip link delete cilium_wg0
ip link delete kube-ipvs0

#Delete the nodeLocal created objects
if ip link show nodelocaldns >/dev/null 2>&1; then
  for i in $(ip address show nodelocaldns | grep inet | awk '{print $2}');
  do
    iptables-save | grep -v $i | iptables-restore
  done
  ip link delete nodelocaldns
fi

# Delete iptables created by CNI plugins or Kubernetes (kube-proxy)
iptables-save | grep -v KUBE- | grep -v CNI- | grep -v cali- | grep -v cali: | grep -v CILIUM_ | grep -v flannel | iptables-restore
ip6tables-save | grep -v KUBE- | grep -v CNI- | grep -v cali- | grep -v cali: | grep -v CILIUM_ | grep -v flannel | ip6tables-restore
`;
}
