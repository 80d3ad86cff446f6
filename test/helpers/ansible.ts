// Runs deploy/ansible/site.yml with Debian's ansible-playbook against test nodes: every node is an
// inventory host on localhost (ansible_connection=local) whose cni-sweep runs inside the node's
// network namespace (cni_sweep_command_prefix: nsenter) with the recording shims first on PATH.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { shimDir, type FlannelNode } from './flannel-node.js';
import { cliEnv, REPO, SHIMS, type CliOptions } from './harness.js';

export const PLAYBOOK = path.join(REPO, 'deploy/ansible/site.yml');

export function findAnsiblePlaybook(): string | undefined {
  return ['/usr/bin/ansible-playbook', '/usr/local/bin/ansible-playbook'].find((p) => fs.existsSync(p));
}

export interface Recap {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface PlaybookResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** PLAY RECAP per host; a host the play never reached is missing. */
  recap: Record<string, Recap>;
  ms: number;
}

/** The PLAY RECAP lines of ansible's default stdout callback. */
export function parseRecap(stdout: string): Record<string, Recap> {
  const out: Record<string, Recap> = {};
  const tail = stdout.slice(stdout.lastIndexOf('PLAY RECAP'));
  for (const m of tail.matchAll(/^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$/gm)) {
    const counts = Object.fromEntries([...m[2]!.matchAll(/(\w+)=(\d+)/g)].map((c) => [c[1], Number(c[2])]));
    out[m[1]!] = counts;
  }
  return out;
}

/** Host variables that point the cni_sweep role at a test node. */
export function hostVars(
  node: FlannelNode,
  o: { controlLog: string; cli?: CliOptions; vars?: Record<string, unknown> },
): Record<string, unknown> {
  return {
    ansible_connection: 'local',
    cni_sweep_become: false,
    cni_sweep_cni: ['flannel'],
    cni_sweep_root: node.root,
    cni_sweep_command_prefix: `nsenter --net=/run/netns/${node.ns}`,
    // The bundle is copied "to the node": beside its root, so destroyFlannelNode removes it.
    cni_sweep_bundle_dest: bundleDest(node),
    cni_sweep_node_interpreter: process.execPath,
    cni_sweep_kubeconfig: path.join(shimDir(node.root), 'kubeconfig'),
    cni_sweep_uncordon: true,
    cni_sweep_environment: cliEnv(node, o.cli),
    // kubectl on the "control host": the same shim, logging to one file shared by all nodes.
    cni_sweep_control_environment: { PATH: `${SHIMS}:${process.env.PATH}`, SHIM_LOG: o.controlLog },
    ...o.vars,
  };
}

export const bundleDest = (node: { root: string }) => path.join(path.dirname(node.root), 'node-bin', 'cni-sweep.cjs');

/** Writes an inventory with the hosts, in order, in the group site.yml plays on. */
export function writeInventory(dir: string, hosts: Record<string, Record<string, unknown>>): string {
  const file = path.join(dir, 'inventory.yml');
  // JSON is YAML: ansible's yaml inventory plugin reads it.
  fs.writeFileSync(file, JSON.stringify({ cni_sweep_nodes: { hosts } }, null, 2));
  return file;
}

/**
 * Runs a play without blocking this process: a play takes tens of seconds on a loaded machine, and a
 * worker blocked that long misses vitest's own messages ("Timeout calling onTaskUpdate").
 */
export async function runPlaybook(dir: string, inventory: string, args: string[] = []): Promise<PlaybookResult> {
  const bin = findAnsiblePlaybook();
  if (!bin) throw new Error('ansible-playbook not found: apt-get install -y ansible-core');
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  // An empty config of our own: no ansible.cfg from the cwd, $HOME or /etc/ansible applies.
  const cfg = path.join(dir, 'ansible.cfg');
  fs.writeFileSync(cfg, '[defaults]\n');
  const start = Date.now();
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      bin,
      ['-i', inventory, PLAYBOOK, ...args],
      {
        cwd: dir,
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
          HOME: process.env.HOME ?? '/root',
          LANG: 'C.UTF-8',
          TMPDIR: tmp,
          ANSIBLE_CONFIG: cfg,
          ANSIBLE_STDOUT_CALLBACK: 'default',
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
          ANSIBLE_PIPELINING: '1',
          ANSIBLE_RETRY_FILES_ENABLED: '0',
          ANSIBLE_LOCAL_TEMP: path.join(tmp, 'local'),
          ANSIBLE_REMOTE_TMP: path.join(tmp, 'remote'),
        },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 180_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, recap: parseRecap(r.stdout), ms: Date.now() - start };
}
