// `npm run demo`: builds a throwaway dirty Flannel node (a network namespace plus a temporary root),
// shows it, runs `cni-sweep plan` and `cni-sweep run --yes` against it (and `cni-sweep doctor` when
// this build has it), shows it clean, and removes everything it made: on success, on error and on
// Ctrl-C. Needs root (network namespaces, veths, iptables). Options: --pods N (default 4).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createFlannelNode, destroyFlannelNode, shimDir, type FlannelNode } from '../test/helpers/flannel-node.js';
import { CLI, cliEnv, scratch } from '../test/helpers/harness.js';

const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);

function say(s: string) {
  process.stdout.write(`\n${bold(`== ${s}`)}\n`);
}

let node: FlannelNode | null = null;
let scratchBase: string | null = null;

function cleanup() {
  if (node) {
    process.stdout.write(dim(`\ndemo: removing namespace ${node.ns} and ${path.dirname(node.root)}\n`));
    try {
      destroyFlannelNode(node);
    } catch (e) {
      process.stderr.write(
        `demo: cleanup failed: ${(e as Error).message}\n  remove by hand: ip netns delete ${node.ns}; rm -rf ${path.dirname(node.root)}\n`,
      );
    }
    node = null;
  }
  if (scratchBase) fs.rmSync(scratchBase, { recursive: true, force: true });
  scratchBase = null;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\ndemo: ${sig}: cleaning up\n`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

/** Runs a shell command inside the node's network namespace and shows it with its output. */
function show(n: FlannelNode, cmd: string) {
  process.stdout.write(`${dim(`[${n.ns}]`)} $ ${cmd.replaceAll(n.root, '$ROOT')}\n`);
  const r = spawnSync('nsenter', [`--net=${n.nsPath}`, 'bash', '-o', 'pipefail', '-c', cmd], { encoding: 'utf8' });
  process.stdout.write((r.stdout ?? '').replaceAll(n.root, '$ROOT') + (r.stderr ?? ''));
}

function state(n: FlannelNode) {
  show(n, 'ip -br link');
  show(n, 'ip route | grep -E "10\\.244\\.|cni0|flannel" || echo "(no pod-network routes)"');
  show(
    n,
    'echo "FLANNEL rules (iptables-nft):  $(iptables-nft-save | grep -c FLANNEL)"; echo "CNI-* rules (iptables-nft):    $(iptables-nft-save | grep -c -- "CNI-")"; echo "FLANNEL rules (ip6tables-nft): $(ip6tables-nft-save | grep -c FLANNEL)"; echo "site rules kept (SITE-FW):     $(iptables-nft-save | grep -c SITE-FW)"',
  );
  show(n, 'nft list tables');
  show(
    n,
    `ls ${n.root}/etc/cni/net.d ${n.root}/var/lib/cni/networks; echo "pod netns files: $(ls ${n.root}/run/netns | wc -l)"; ls -d ${n.root}/run/flannel 2>/dev/null || echo "(no /run/flannel)"`,
  );
}

/** Runs cni-sweep inside the node's namespace, its output going straight to the terminal. */
function cniSweep(n: FlannelNode, args: string[]): number | null {
  const full = [...args, '--root', n.root, '--node', 'demo-node', '--kubeconfig', path.join(shimDir(n.root), 'kubeconfig')];
  process.stdout.write(`${dim(`[${n.ns}]`)} $ cni-sweep ${full.join(' ').replaceAll(n.root, '$ROOT')}\n`);
  const env = cliEnv(n);
  if (tty) delete env.NO_COLOR;
  const r = spawnSync('nsenter', [`--net=${n.nsPath}`, process.execPath, CLI, ...full], { stdio: 'inherit', env });
  process.stdout.write(dim(`(${r.status === null ? `killed by ${r.signal}` : `exit ${r.status}`})\n`));
  if (r.signal === 'SIGINT' || r.signal === 'SIGTERM' || r.status === 130 || r.status === 143) throw new Error('interrupted');
  return r.status;
}

function main() {
  let pods = 4;
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--pods') pods = Number(args[++i]);
    else if (args[i] === '--help' || args[i] === '-h') {
      process.stdout.write('usage: sudo npm run demo [-- --pods N]\n');
      return 0;
    } else {
      process.stderr.write(`demo: unknown option ${args[i]}\n`);
      return 2;
    }
  }
  if (!Number.isInteger(pods) || pods < 1 || pods > 250) {
    process.stderr.write('demo: --pods must be 1..250\n');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      'demo: must run as root: it creates a network namespace with veths, iptables rules and mounts.\n  run: sudo npm run demo\n',
    );
    return 3;
  }
  if (!fs.existsSync(CLI)) {
    process.stderr.write(`demo: ${CLI} is missing: run npm run build (npm run demo does it first)\n`);
    return 2;
  }

  const s = scratch('demo');
  scratchBase = path.dirname(s.root);
  say(`Building a dirty Flannel node: namespace ${s.ns}, root ${s.root}, ${pods} pods`);
  node = createFlannelNode({ ...s, pods, foreignRules: 3 });
  process.stdout.write(
    dim(
      "(cni0 with pod veths, flannel.1, host-gw routes, FLANNEL-*/CNI-* iptables rules, a flannel nftables table, CNI config, IPAM and pod netns files;\n plus things that are not Flannel's and must survive: docker0, site-br, a veth on docker0, SITE-FW rules, kube-proxy rules, podman IPAM)\n",
    ),
  );
  state(node);

  say('cni-sweep plan: what a run would do, as a bash script (changes nothing)');
  if (cniSweep(node, ['plan']) !== 0) throw new Error('cni-sweep plan failed');

  const doctor = spawnSync(process.execPath, [CLI, 'doctor', '--help'], { stdio: 'ignore' });
  if (doctor.status === 0) {
    say('cni-sweep doctor: findings before the run');
    cniSweep(node, ['doctor']); // exit 1 means findings: expected on a dirty node
  } else process.stdout.write(dim('\n(skipping cni-sweep doctor: this build has no doctor command yet)\n'));

  say('cni-sweep run --yes');
  if (cniSweep(node, ['run', '--yes']) !== 0) throw new Error('cni-sweep run failed');

  say('After: Flannel is gone, everything else is still there');
  state(node);
  show(node, `cat ${shimDir(node.root)}/calls.log`);

  if (doctor.status === 0) {
    say('cni-sweep doctor: after the run');
    cniSweep(node, ['doctor']);
  }

  say('A second run changes nothing');
  if (cniSweep(node, ['run', '--yes']) !== 0) throw new Error('second cni-sweep run failed');
  return 0;
}

let code = 1;
try {
  code = main();
} catch (e) {
  process.stderr.write(`demo: error: ${(e as Error).message}\n`);
  code = 1;
} finally {
  cleanup();
}
process.exit(code);
