// Benchmark: cleaning identical dirty Flannel nodes three ways, on real kernel state.
//
//   manual      the guides' way: one command per object (ip link delete per veth, iptables -D/-F/-X
//               per rule and chain, rm per file, umount + rm per netns, ip route del per route)
//   floor       the batched floor: one rm -rf, one ip -batch, one iptables-restore --noflush -w per
//               backend/family, one nft -f, one umount + one rm for the pod namespaces
//   floor-group the floor, but the links (pod veths, cni0, flannel devices) go in one kernel batch:
//               `link set ... group G` for each, then one `link delete group G` (one unregister batch)
//   sweep       cni-sweep's cleanup phases: run --yes --only cni-config,cni-state,interfaces,routes,firewall,netns
//   sweep-full  cni-sweep run --yes: backup, drain, service stop/start (to the recording shims) included
//   k3s-killall, rke2-killall
//               the network part of k3s's and rke2's killall scripts (bench/scripts.ts), a user's
//               alternative: they also destroy foreign state (collateral) and leave some of Flannel's
//               (leftovers), both counted against the clean end state instead of failing the bench
//
// The peers* configurations add docker and podman containers beside the pods (test/helpers/
// containers-node.ts): host veths whose peers are in other namespaces; plain* are the same nodes
// without them, for the netns phase's cost on each.
//
// Every method gets a freshly built node, identical to the others (same namespace name, same root
// path, same pods); the end states are compared. Needs root. Usage:
//   npm run bench [-- --runs 3 --configs target,big50,...,peers50,plain50,peers250,plain250 --methods manual,floor,...,k3s-killall,rke2-killall --no-write]
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addContainers, removeContainers } from '../test/helpers/containers-node.js';
import { createFlannelNode, destroyFlannelNode, shimDir, type FlannelNode } from '../test/helpers/flannel-node.js';
import { CLI as BUILT_CLI, REPO, cliEnv, snapshot, type NodeState } from '../test/helpers/harness.js';
import { PHASES } from '../src/phases/index.js';
import { commandCount, discover, floorScript, k3sKillallScript, manualScript, rke2KillallScript } from './scripts.js';

// ---------------------------------------------------------------------------------------------
// options

interface Config {
  name: string;
  pods: number;
  foreignRules: number;
  big: boolean;
  backend: 'nft' | 'legacy';
  /** Docker and podman containers beside the pods (their veths' peers in other namespaces). */
  containers?: boolean;
  /** podman's CNI config (portmap's chains then shared): on the peers nodes and their plain twins. */
  podmanConfig?: boolean;
  /** Shown in the table. */
  label: string;
}

const DOCKER = 10;
const PODMAN = 10;
const CONFIGS: Config[] = [
  { name: 'target', pods: 250, foreignRules: 5000, big: false, backend: 'nft', label: 'N=250, M=5000 (/16, /24 node subnet)' },
  { name: 'big50', pods: 50, foreignRules: 0, big: true, backend: 'nft', label: 'N=50 (/14, /22 node subnet)' },
  { name: 'big250', pods: 250, foreignRules: 0, big: true, backend: 'nft', label: 'N=250 (/14, /22 node subnet)' },
  { name: 'big1000', pods: 1000, foreignRules: 0, big: true, backend: 'nft', label: 'N=1000 (/14, /22 node subnet)' },
  { name: 'target-legacy', pods: 250, foreignRules: 5000, big: false, backend: 'legacy', label: 'N=250, M=5000, iptables-legacy' },
  ...[50, 250].flatMap((pods): Config[] => [
    {
      name: `peers${pods}`,
      pods,
      foreignRules: 0,
      big: false,
      backend: 'nft',
      containers: true,
      podmanConfig: true,
      label: `N=${pods} + ${DOCKER} docker, ${PODMAN} podman containers`,
    },
    {
      name: `plain${pods}`,
      pods,
      foreignRules: 0,
      big: false,
      backend: 'nft',
      podmanConfig: true,
      label: `N=${pods}, podman config, no containers`,
    },
  ]),
];

type Method = 'manual' | 'floor' | 'floor-group' | 'sweep' | 'sweep-nobackup' | 'sweep-full' | 'k3s-killall' | 'rke2-killall';
const METHODS: Method[] = ['manual', 'floor', 'floor-group', 'sweep', 'sweep-nobackup', 'sweep-full', 'k3s-killall', 'rke2-killall'];
/** Methods whose end state is not the clean one: compared to it for collateral and leftovers, not required to match. */
const KILLALL = new Set<Method>(['k3s-killall', 'rke2-killall']);
/** The CLI under test: dist/cni-sweep.cjs, or --cli (e.g. a build of a candidate change). */
let CLI = BUILT_CLI;
const CLEANUP_PHASES = 'cni-config,cni-state,interfaces,routes,firewall,netns';
/**
 * Every phase but the cleanup ones: what sweep-nobackup skips, so that it does exactly the manual and
 * floor scripts' work. Taken from the phase list, so that a new phase (remove-sandboxes was missing
 * here and made sweep-nobackup read the CRI) cannot slip into the comparison.
 */
const NOT_CLEANUP = PHASES.filter((p) => !p.cleanup)
  .map((p) => p.name)
  .join(',');

function parseArgs(argv: string[]) {
  const o = {
    runs: 3,
    configs: CONFIGS.map((c) => c.name),
    methods: [...METHODS] as Method[],
    write: true,
    startupRuns: 20,
    cli: BUILT_CLI,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--runs') o.runs = Number(val());
    else if (a === '--configs') o.configs = val().split(',');
    else if (a === '--methods') o.methods = val().split(',') as Method[];
    else if (a === '--no-write') o.write = false;
    else if (a === '--cli') o.cli = path.resolve(val());
    else if (a === '--startup-runs') o.startupRuns = Number(val());
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) usage('--runs: a positive integer');
  for (const c of o.configs)
    if (!CONFIGS.some((x) => x.name === c)) usage(`unknown config ${c} (known: ${CONFIGS.map((x) => x.name).join(', ')})`);
  for (const m of o.methods) if (!METHODS.includes(m)) usage(`unknown method ${m} (known: ${METHODS.join(', ')})`);
  return o;
}

function usage(err?: string): never {
  if (err) process.stderr.write(`bench: ${err}\n`);
  process.stderr.write(
    `usage: npm run bench -- [--runs N] [--configs ${CONFIGS.map((c) => c.name).join(',')}] [--methods ${METHODS.join(',')}] [--startup-runs N] [--cli path/to/cni-sweep.cjs] [--no-write]\n` +
      "  peers50/peers250: docker and podman containers beside the pods (plain50/plain250: the same nodes without them); k3s-killall/rke2-killall: those scripts' network part, run contained\n",
  );
  process.exit(err ? 2 : 0);
}

// ---------------------------------------------------------------------------------------------
// scratch space, and cleaning it up whatever happens

const live = new Set<FlannelNode>();
let base = '';

function cleanupAll() {
  for (const n of live) {
    try {
      removeContainers(n);
      destroyFlannelNode(n);
    } catch (e) {
      process.stderr.write(`bench: cleanup of ${n.ns} failed: ${(e as Error).message}\n`);
    }
  }
  live.clear();
  if (base) fs.rmSync(base, { recursive: true, force: true });
}

/** Lets a signal's handler run: libuv delivers signals in the event loop's poll phase, which setImmediate waits for. */
const signalsHandled = () => new Promise<void>((resolve) => setImmediate(resolve));

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}: removing the benchmark's namespaces and files\n`);
    cleanupAll();
    process.exit(130);
  });
}

function makeNode(cfg: Config): FlannelNode {
  // Same namespace name and root path for every node of a config: pod ids, veth and netns names
  // derive from the namespace name, so this makes the nodes identical.
  const ns = `csb-${process.pid}-${cfg.name}`.slice(0, 40);
  const root = path.join(base, cfg.name, 'root');
  const node = createFlannelNode({
    ns,
    root,
    pods: cfg.pods,
    foreignRules: cfg.foreignRules,
    big: cfg.big,
    backend: cfg.backend,
    podmanConfig: cfg.podmanConfig ?? false,
    // As on a Kubernetes node: /run is a tmpfs (systemd's, shared) and run/netns a plain directory
    // on it, as containerd and CRI-O make it; the netns phase then takes the path a node takes.
    netnsMount: 'tmpfs',
  });
  live.add(node);
  if (cfg.containers) addContainers(node, { docker: DOCKER, podman: PODMAN, backend: cfg.backend });
  return node;
}

function dropNode(node: FlannelNode) {
  removeContainers(node);
  destroyFlannelNode(node);
  live.delete(node);
}

// ---------------------------------------------------------------------------------------------
// measuring

interface Sample {
  ms: number;
  /** Peak RSS of the process tree (GNU time %M: the largest of the process and its children), kB. */
  treeKb: number | null;
  /** cni-sweep only: the Node process's own VmHWM, kB. */
  nodeKb: number | null;
  /** CPU time (user + system) of the process tree, GNU time %U + %S, ms. */
  cpuMs: number | null;
  stdout: string;
  stderr: string;
  code: number | null;
  signal: string | null;
}

const HAVE_TIME = fs.existsSync('/usr/bin/time');

/** Busy share of all CPUs over `ms`, from /proc/stat (iowait counts as idle). */
function cpuBusy(ms: number): number {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  const b = read();
  return b.total === a.total ? 0 : 1 - (b.idle - a.idle) / (b.total - a.total);
}

/**
 * Waits (up to 15 s) until the machine is quiet. Building a node, and tearing the previous one down,
 * leave the kernel work for seconds afterwards (namespaces are destroyed by a background worker,
 * IPv6 sets up each new link): measured right away, a method pays for its predecessor's teardown.
 */
function settle(): void {
  const until = Date.now() + 15_000;
  while (Date.now() < until && cpuBusy(250) > 0.1);
}

function measure(argv: string[], env: NodeJS.ProcessEnv, extra: { hwm?: string } = {}): Sample {
  const memFile = path.join(base, 'time.out');
  fs.rmSync(memFile, { force: true });
  if (extra.hwm) fs.rmSync(extra.hwm, { force: true });
  const full = HAVE_TIME ? ['/usr/bin/time', '-f', '%U %S %M', '-o', memFile, ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0]!, full.slice(1), {
    env,
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    timeout: 1_800_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const readKb = (f: string) => {
    try {
      const v = fs.readFileSync(f, 'utf8').trim().split('\n').pop() ?? '';
      return /^\d+$/.test(v) ? Number(v) : null;
    } catch {
      return null;
    }
  };
  // GNU time's last line: "%U %S %M" (seconds, seconds, kB).
  let times: number[] = [];
  try {
    times = (fs.readFileSync(memFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
  } catch {
    /* no GNU time */
  }
  const timed = HAVE_TIME && times.length === 3 && times.every((x) => Number.isFinite(x));
  return {
    ms,
    treeKb: timed ? times[2]! : null,
    cpuMs: timed ? (times[0]! + times[1]!) * 1000 : null,
    nodeKb: extra.hwm ? readKb(extra.hwm) : null,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    code: r.status,
    signal: r.signal ?? (r.error ? String(r.error) : null),
  };
}

const nsenter = (node: FlannelNode) => ['nsenter', `--net=${node.nsPath}`];

function sweepArgv(node: FlannelNode, args: string[]): string[] {
  return [
    ...nsenter(node),
    process.execPath,
    '-r',
    path.join(REPO, 'bench/hwm.cjs'),
    CLI,
    ...args,
    '--root',
    node.root,
    '--node',
    'n1',
    '--kubeconfig',
    path.join(shimDir(node.root), 'kubeconfig'),
  ];
}

function sweepEnv(node: FlannelNode, hwm: string): NodeJS.ProcessEnv {
  return { ...cliEnv(node), CNI_SWEEP_BENCH_HWM: hwm };
}

// ---------------------------------------------------------------------------------------------
// end states

const OWN_FILES = /^var\/(backups|lib\/cni-sweep)(\/|$)|^run\/cni-sweep\.lock/;
const FLANNEL = /FLANNEL|flanneld|CNI-|cbr0/;

/** A node's state without cni-sweep's own bookkeeping (backups, journal, lock). */
function endState(node: FlannelNode): NodeState {
  const s = snapshot(node);
  return { ...s, files: s.files.filter((f) => !OWN_FILES.test(f)) };
}

const sha512 = (s: string, n: number) => createHash('sha512').update(s).digest('hex').slice(0, n);

/**
 * Flannel leftovers in an end state, for the report (empty when clean). Beside podman's config,
 * CNI-* chains are podman's too: then only the pods' own chains (named as the bridge plugin and
 * portmap name them, from the network name and container id) and lines naming cbr0 count.
 */
function leftovers(s: NodeState, node: FlannelNode, cfg: Config): string[] {
  const out: string[] = [];
  const veths = new Set(node.pods.map((p) => p.veth));
  const podChains = node.pods.flatMap((p) => [`CNI-${sha512(`cbr0${p.cid}`, 24)}`, `CNI-DN-${sha512(`dn${p.cid}`, 21)}`]);
  const flannel = cfg.podmanConfig ? new RegExp(`FLANNEL|flanneld|cbr0|${podChains.join('|')}`) : FLANNEL;
  for (const l of s.links) if (/^(cni0|flannel)/.test(l) || veths.has(l.split(' ')[0]!)) out.push(`link ${l}`);
  for (const k of ['ipt4nft', 'ipt4legacy', 'ipt6nft', 'ipt6legacy'] as const)
    for (const l of s[k].split('\n')) if (flannel.test(l)) out.push(`${k}: ${l}`);
  if (/flannel/.test(s.nft)) out.push('nft: flannel table');
  for (const l of [...s.routes4.split('\n'), ...s.routes6.split('\n')])
    if (/^(10\.244\.|10\.0\.(4|8|12)\.|fd00:10:244)/.test(l)) out.push(`route ${l}`);
  for (const f of s.files) if (/flannel|cbr0|run\/netns\/cni-/.test(f)) out.push(`file ${f.split(' ')[0]}`);
  return out;
}

/**
 * What an end state lacks and has beyond the clean one, line by line (a link, a rule, a chain, a
 * route, a file): for the killall scripts, what they destroyed that stays (collateral) and what
 * they left (leftovers), counted per kind.
 */
function against(clean: NodeState, s: NodeState): { lost: Map<string, number>; extra: Map<string, number>; lostLines: string[] } {
  const lost = new Map<string, number>();
  const extra = new Map<string, number>();
  const lostLines: string[] = [];
  for (const k of Object.keys(clean) as Array<keyof NodeState>) {
    const lines = (x: NodeState) => (Array.isArray(x[k]) ? (x[k] as string[]) : String(x[k]).split('\n')).filter(Boolean);
    const a = new Set(lines(clean));
    const b = new Set(lines(s));
    for (const l of a)
      if (!b.has(l)) {
        lost.set(k, (lost.get(k) ?? 0) + 1);
        lostLines.push(`${k}: ${l.slice(0, 160)}`);
      }
    for (const l of b) if (!a.has(l)) extra.set(k, (extra.get(k) ?? 0) + 1);
  }
  return { lost, extra, lostLines };
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const byKind = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} ${n}`).join(', ');

function diffStates(a: NodeState, b: NodeState): string[] {
  const out: string[] = [];
  for (const k of Object.keys(a) as Array<keyof NodeState>) {
    const la = Array.isArray(a[k]) ? (a[k] as string[]) : String(a[k]).split('\n');
    const lb = Array.isArray(b[k]) ? (b[k] as string[]) : String(b[k]).split('\n');
    const sa = new Set(la);
    const sb = new Set(lb);
    const onlyA = la.filter((l) => !sb.has(l));
    const onlyB = lb.filter((l) => !sa.has(l));
    if (onlyA.length || onlyB.length)
      out.push(
        `${k}: ${onlyA
          .slice(0, 3)
          .map((l) => `-${l}`)
          .concat(onlyB.slice(0, 3).map((l) => `+${l}`))
          .join(' | ')}${onlyA.length + onlyB.length > 6 ? ' ...' : ''}`,
      );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// one cleanup

interface Breakdown {
  /** Wall time of each applied step (phase: argv[0..1]), from cni-sweep's --json report. */
  steps: Array<{ phase: string; cmd: string; ms: number }>;
  /** Wall time of each applied phase (planning it again, then its steps, some side by side). */
  phases: Array<{ phase: string; ms: number }>;
}

interface Result {
  sample: Sample;
  commands: number;
  end: NodeState;
  before: string;
  breakdown?: Breakdown;
  /** Flannel state left (leftovers()). */
  left: string[];
}

/** An unused link group: random, checked against the node's links. */
function freeGroup(node: FlannelNode): number {
  const used = new Set(
    (
      JSON.parse(
        execFileSync('nsenter', [...nsenter(node).slice(1), 'ip', '-j', 'link', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 }),
      ) as Array<{ group?: string | number }>
    ).map((l) => String(l.group)),
  );
  for (;;) {
    const g = 100000 + Math.floor(Math.random() * 1_000_000_000);
    if (!used.has(String(g))) return g;
  }
}

function cleanOnce(cfg: Config, method: Method): Result {
  const node = makeNode(cfg);
  try {
    const before = JSON.stringify(snapshot(node));
    let sample: Sample;
    let commands = 0;
    let breakdown: Breakdown | undefined;
    if (method === 'manual' || method === 'floor' || method === 'floor-group') {
      const owned = discover(node);
      const script =
        method === 'manual' ? manualScript(owned) : floorScript(owned, method === 'floor-group' ? { group: freeGroup(node) } : {});
      commands = commandCount(owned, method === 'manual' ? 'manual' : 'floor');
      const file = path.join(base, `${cfg.name}-${method}.sh`);
      fs.writeFileSync(file, script);
      settle();
      sample = measure([...nsenter(node), 'bash', file], { PATH: process.env.PATH, LC_ALL: 'C' });
      if (sample.code !== 0)
        throw new Error(
          `${method} script failed (exit ${sample.code}${sample.signal ? `, ${sample.signal}` : ''}): ${sample.stderr.slice(-2000)}\nscript: ${file}`,
        );
    } else if (KILLALL.has(method)) {
      const file = path.join(base, `${cfg.name}-${method}.sh`);
      fs.writeFileSync(file, method === 'k3s-killall' ? k3sKillallScript(node.root) : rke2KillallScript(node.root));
      settle();
      // Their exit status is that of their last pipeline; a failing `ip link delete` of a device
      // the node lacks is part of how they run. What they leave is judged from the end state.
      sample = measure([...nsenter(node), '/bin/sh', file], { PATH: process.env.PATH, LC_ALL: 'C' });
      commands = (sample.stderr.match(/^\+ /gm) ?? []).length;
    } else {
      const hwm = path.join(base, 'hwm.out');
      const args =
        method === 'sweep'
          ? ['run', '--yes', '--json', '--only', CLEANUP_PHASES]
          : method === 'sweep-nobackup'
            ? ['run', '--yes', '--json', '--skip', NOT_CLEANUP]
            : ['run', '--yes', '--json'];
      settle();
      sample = measure(sweepArgv(node, args), sweepEnv(node, hwm), { hwm });
      if (sample.code !== 0)
        throw new Error(
          `cni-sweep ${args.join(' ')} failed (exit ${sample.code}${sample.signal ? `, ${sample.signal}` : ''}): ${sample.stderr.slice(-1500)}`,
        );
      const report = JSON.parse(sample.stdout) as {
        phases: Array<{ name: string; ms?: number; steps: Array<{ argv: string[]; ms: number; status: string }> }>;
      };
      breakdown = {
        steps: report.phases.flatMap((p) =>
          p.steps.filter((s) => s.status === 'ok').map((s) => ({ phase: p.name, cmd: s.argv.slice(0, 2).join(' '), ms: s.ms })),
        ),
        phases: report.phases
          .filter((p) => p.ms !== undefined && p.steps.some((s) => s.status === 'ok'))
          .map((p) => ({ phase: p.name, ms: p.ms! })),
      };
      commands = breakdown.steps.length;
    }
    const end = endState(node);
    return { sample, commands, end, before, breakdown, left: leftovers(end, node, cfg) };
  } finally {
    dropNode(node);
  }
}

// ---------------------------------------------------------------------------------------------
// plan and startup

function timePlan(cfg: Config, runs: number): { samples: Sample[]; steps: number } {
  const node = makeNode(cfg);
  try {
    const hwm = path.join(base, 'hwm.out');
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      settle();
      const s = measure(sweepArgv(node, ['plan']), sweepEnv(node, hwm), { hwm });
      if (s.code !== 0)
        throw new Error(`cni-sweep plan failed (exit ${s.code}${s.signal ? `, ${s.signal}` : ''}): ${s.stderr.slice(-1500)}`);
      samples.push(s);
    }
    const steps = samples[0]!.stdout.split('\n').filter(Boolean).length;
    return { samples, steps };
  } finally {
    dropNode(node);
  }
}

interface Startup {
  tool: string;
  rows: Array<{ cmd: string; medianMs: number; minMs: number; maxMs: number }>;
}

/**
 * What `sudo` leaves of the environment (env_reset): cni-sweep runs with it in every measurement.
 * Variables a shell may carry, NODE_EXTRA_CA_CERTS among them (Node then parses a CA bundle at
 * start-up, tens of milliseconds), do not reach a `sudo cni-sweep` on a node.
 */
const SUDO_ENV = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C' };

function timeStartup(runs: number): Startup {
  const cmds = [['--version'], ['--help'], ['profiles']];
  const hyperfine = spawnSync('hyperfine', ['--version'], { encoding: 'utf8' }).status === 0;
  const rows: Startup['rows'] = [];
  const baseline = [process.execPath, '-e', '0'];
  const all = [baseline, ...cmds.map((c) => [process.execPath, CLI, ...c])];
  if (hyperfine) {
    const out = path.join(base, 'hyperfine.json');
    const r = spawnSync(
      'hyperfine',
      ['-N', '--warmup', '3', '--runs', String(runs), '--export-json', out, ...all.map((a) => a.join(' '))],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: SUDO_ENV },
    );
    if (r.status === 0) {
      const j = JSON.parse(fs.readFileSync(out, 'utf8')) as {
        results: Array<{ command: string; median: number; min: number; max: number }>;
      };
      for (const x of j.results)
        rows.push({
          cmd: x.command.replace(process.execPath, 'node').replace(CLI, 'dist/cni-sweep.cjs'),
          medianMs: x.median * 1000,
          minMs: x.min * 1000,
          maxMs: x.max * 1000,
        });
      return { tool: `hyperfine -N --warmup 3 --runs ${runs}`, rows };
    }
  }
  for (const a of all) {
    for (let i = 0; i < 3; i++) spawnSync(a[0]!, a.slice(1), { stdio: 'ignore', env: SUDO_ENV });
    const ts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      spawnSync(a[0]!, a.slice(1), { stdio: 'ignore', env: SUDO_ENV });
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    rows.push({
      cmd: a.join(' ').replace(process.execPath, 'node').replace(CLI, 'dist/cni-sweep.cjs'),
      medianMs: median(ts),
      minMs: Math.min(...ts),
      maxMs: Math.max(...ts),
    });
  }
  return { tool: `spawnSync loop with process.hrtime, 3 warm-up + ${runs} runs`, rows };
}

// ---------------------------------------------------------------------------------------------
// report

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmtMs = (ms: number) =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
const fmtMb = (kb: number | null | undefined) => (kb == null ? 'n/a' : `${(kb / 1024).toFixed(0)} MB`);
const fmtX = (x: number) => (x >= 10 ? `${x.toFixed(0)}x` : `${x.toFixed(2)}x`);

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'n/a';
  }
}

function machine(): string[] {
  const model = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return [
    `- date: ${new Date().toISOString()}`,
    `- CPU: ${os.cpus().length} x ${model} (nproc ${sh('nproc', [])}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
    `- kernel: ${os.release()}; load average at start: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
    // umount (libmount) reads the whole mount table for each namespace it unmounts: leftover mounts
    // from elsewhere slow the netns phase and the manual and floor scripts' umount alike.
    `- mount table at start: ${fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).length} entries`,
    `- node ${process.version}; ${sh('iptables-nft', ['--version'])}; ${sh('ip', ['-V'])}; ${sh('nft', ['--version'])}`,
  ];
}

interface Row {
  cfg: Config;
  method: Method;
  commands: number;
  ms: number[];
  treeKb: Array<number | null>;
  nodeKb: Array<number | null>;
  cpuMs: Array<number | null>;
  breakdowns: Breakdown[];
  /** Killall scripts: per run, the clean end state's lines they destroyed, and the lines they left. */
  against: Array<ReturnType<typeof against>>;
  /** Killall scripts: per run, the Flannel state they left (leftovers()). */
  left: string[][];
}

function maxKb(xs: Array<number | null>): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? Math.max(...v) : null;
}

async function mainBench() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root: it creates network namespaces, veths and iptables rules (sudo npm run bench)\n');
    process.exit(3);
  }
  CLI = opts.cli;
  if (opts.cli !== BUILT_CLI) opts.write = false; // RESULTS.md is for the CLI this tree builds
  if (!fs.existsSync(CLI)) {
    process.stderr.write(`bench: ${CLI} is missing: run npm run build first (npm run bench does)\n`);
    process.exit(2);
  }
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-bench-'));
  const started = Date.now();
  const header = machine();
  process.stderr.write(
    `bench: ${opts.runs} run(s) of ${opts.methods.join(', ')} on ${opts.configs.join(', ')}; cli ${CLI}\n${header.join('\n')}\n`,
  );

  const rows: Row[] = [];
  const problems: string[] = [];
  const plans: Array<{ cfg: Config; samples: Sample[]; steps: number }> = [];
  try {
    for (const name of opts.configs) {
      const cfg = CONFIGS.find((c) => c.name === name)!;
      const byMethod = new Map<Method, Row>(
        opts.methods.map((m) => [
          m,
          { cfg, method: m, commands: 0, ms: [], treeKb: [], nodeKb: [], cpuMs: [], breakdowns: [], against: [], left: [] },
        ]),
      );
      let reference: { method: Method; end: NodeState; json: string; before: string } | null = null;
      for (let run = 1; run <= opts.runs; run++) {
        // Methods interleaved within a run, so that drift on a shared machine hits all of them alike.
        // The killall scripts last: their end states are compared with a clean one.
        for (const m of [...opts.methods.filter((x) => !KILLALL.has(x)), ...opts.methods.filter((x) => KILLALL.has(x))]) {
          // Each cell runs synchronously: a SIGINT or SIGTERM handler gets its turn only here.
          await signalsHandled();
          let r: Result;
          try {
            r = cleanOnce(cfg, m);
          } catch (e) {
            // Killed from outside (a shared machine): note it and measure that cell again on a fresh node.
            if (!/, SIG[A-Z]+\)/.test((e as Error).message)) throw e;
            problems.push(`${cfg.name}/${m} run ${run}: killed from outside, measured again: ${(e as Error).message.split(':')[0]}`);
            // A Ctrl-C reaches the cell's command too: the bench stops here rather than measure again.
            await signalsHandled();
            r = cleanOnce(cfg, m);
          }
          const row = byMethod.get(m)!;
          row.commands = r.commands;
          row.ms.push(r.sample.ms);
          row.treeKb.push(r.sample.treeKb);
          row.nodeKb.push(r.sample.nodeKb);
          row.cpuMs.push(r.sample.cpuMs);
          if (r.breakdown) row.breakdowns.push(r.breakdown);
          const left = r.left;
          if (KILLALL.has(m)) {
            row.left.push(left);
            if (!reference) problems.push(`${cfg.name}/${m} run ${run}: no clean method ran to compare its end state with`);
            else {
              const a = against(reference.end, r.end);
              row.against.push(a);
              process.stderr.write(
                `bench: ${cfg.name} run ${run} ${m}: destroyed ${total(a.lost)} (${byKind(a.lost)}), left ${left.length} of Flannel's; e.g. ${a.lostLines.slice(0, 3).join(' | ')}\n`,
              );
            }
          } else if (left.length)
            problems.push(
              `${cfg.name}/${m} run ${run}: Flannel state left: ${left.slice(0, 5).join('; ')}${left.length > 5 ? ` (+${left.length - 5})` : ''}`,
            );
          const json = JSON.stringify(r.end);
          if (KILLALL.has(m)) {
            /* compared above */
          } else if (!reference) reference = { method: m, end: r.end, json, before: r.before };
          else {
            if (r.before !== reference.before)
              problems.push(`${cfg.name}/${m} run ${run}: the dirty node was not identical to the first one`);
            if (json !== reference.json)
              problems.push(
                `${cfg.name}/${m} run ${run}: end state differs from ${reference.method}'s: ${diffStates(reference.end, r.end).join('; ')}`,
              );
          }
          process.stderr.write(
            `bench: ${cfg.name} run ${run} ${m.padEnd(12)} ${fmtMs(r.sample.ms).padStart(8)}  cpu ${r.sample.cpuMs === null ? 'n/a' : fmtMs(r.sample.cpuMs)}  ${r.commands} command(s)  peak ${fmtMb(r.sample.treeKb)}${r.sample.nodeKb ? ` (node ${fmtMb(r.sample.nodeKb)})` : ''}\n`,
          );
        }
      }
      rows.push(...byMethod.values());
      const p = timePlan(cfg, opts.runs);
      plans.push({ cfg, ...p });
      process.stderr.write(`bench: ${cfg.name} plan ${p.samples.map((s) => fmtMs(s.ms)).join(', ')}\n`);
    }
    const startup = timeStartup(opts.startupRuns);
    const md = render(opts, header, rows, plans, startup, problems, Date.now() - started);
    process.stdout.write(md);
    if (opts.write) {
      fs.writeFileSync(path.join(REPO, 'bench/RESULTS.md'), md);
      process.stderr.write('bench: wrote bench/RESULTS.md\n');
    }
    if (problems.length) process.exitCode = 1;
  } finally {
    cleanupAll();
  }
}

// ---------------------------------------------------------------------------------------------
// linearity: the /22 nodes at 50, 250 and 1000 pods, from the cells the run measured anyway

const LINEAR_CONFIGS = ['big50', 'big250', 'big1000'];
const LINEAR_PODS = [50, 250, 1000];
/** A cost per added pod this many times higher from 250 to 1000 pods than from 50 to 250 counts as growing faster than the pods. */
const LINEAR_LIMIT = 1.5;

interface Series {
  what: string;
  /** Medians at 50, 250, 1000 pods: wall ms, CPU ms (user + system of the process tree), peak RSS kB (cni-sweep: its VmHWM). */
  ms: number[];
  cpu: Array<number | null>;
  kb: Array<number | null>;
  /** sweep-nobackup: each phase's wall ms at the three sizes. */
  phases?: Array<{ phase: string; ms: number[] }>;
}

const medianOf = (xs: Array<number | null>) => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? median(v) : null;
};

function linearSeries(opts: ReturnType<typeof parseArgs>, rows: Row[], plans: Array<{ cfg: Config; samples: Sample[] }>): Series[] {
  if (!LINEAR_CONFIGS.every((c) => opts.configs.includes(c))) return [];
  const out: Series[] = [];
  for (const m of opts.methods) {
    const rs = LINEAR_CONFIGS.map((c) => rows.find((r) => r.cfg.name === c && r.method === m));
    if (rs.some((r) => !r?.ms.length)) continue;
    const sweep = m.startsWith('sweep');
    const series: Series = {
      what: m,
      ms: rs.map((r) => median(r!.ms)),
      cpu: rs.map((r) => medianOf(r!.cpuMs)),
      kb: rs.map((r) => maxKb(sweep ? r!.nodeKb : r!.treeKb)),
    };
    if (m === 'sweep-nobackup' && rs.every((r) => r!.breakdowns.length)) {
      series.phases = rs[0]!.breakdowns[0]!.phases.map(({ phase }) => ({
        phase,
        ms: rs.map((r) => median(r!.breakdowns.map((b) => b.phases.find((x) => x.phase === phase)?.ms ?? 0))),
      }));
    }
    out.push(series);
  }
  const ps = LINEAR_CONFIGS.map((c) => plans.find((p) => p.cfg.name === c));
  if (ps.every((p) => p?.samples.length))
    out.push({
      what: 'plan',
      ms: ps.map((p) => median(p!.samples.map((s) => s.ms))),
      cpu: ps.map((p) => medianOf(p!.samples.map((s) => s.cpuMs))),
      kb: ps.map((p) => maxKb(p!.samples.map((s) => s.nodeKb))),
    });
  return out;
}

/** Cost per added pod from 50 to 250 and from 250 to 1000. */
function slopes(v: Array<number | null>): [number, number] | null {
  const [a, b, c] = v;
  if (a == null || b == null || c == null) return null;
  return [(b - a) / (LINEAR_PODS[1]! - LINEAR_PODS[0]!), (c - b) / (LINEAR_PODS[2]! - LINEAR_PODS[1]!)];
}

/** The second slope over the first: 1 when the cost grows as the pods do; null when the first is too small to divide by. */
function growthRatio(v: Array<number | null>): number | null {
  const s = slopes(v);
  if (!s || s[0] <= 0) return null;
  // A growth from 50 to 250 pods under 2% of the value at 50 is noise, not a slope to divide by.
  if (v[0] != null && s[0] * (LINEAR_PODS[1]! - LINEAR_PODS[0]!) < 0.02 * v[0]) return null;
  return s[1] / s[0];
}

function linearity(opts: ReturnType<typeof parseArgs>, rows: Row[], plans: Array<{ cfg: Config; samples: Sample[] }>): string[] {
  const series = linearSeries(opts, rows, plans);
  if (!series.length) return [];
  const L: string[] = ['', '## Linearity: 50, 250 and 1000 pods (the /22 nodes big50, big250, big1000)', ''];
  L.push(
    `Medians of the cells above (and of \`plan\`). Per added pod: the cost from 50 to 250 pods and from 250 to 1000, divided by the pods added; **growth** = the second over the first: 1 when the cost grows as the pods do, above ${LINEAR_LIMIT} when it grows faster (n/a: too little growth from 50 to 250 to divide by). Peak RSS: cni-sweep's own VmHWM for its runs and plan, the process tree's for the scripts.`,
    '',
  );
  const slopeCell = (v: Array<number | null>, unit: (x: number) => string) => {
    const s = slopes(v);
    const r = growthRatio(v);
    return s
      ? `${unit(s[0])} | ${unit(s[1])} | ${r === null ? 'n/a' : fmtX(r)}${r !== null && r > LINEAR_LIMIT ? ' **faster**' : ''}`
      : ' |  | ';
  };
  const perPodMs = (x: number) => `${x.toFixed(2)} ms`;
  const perPodKb = (x: number) => `${x.toFixed(0)} kB`;
  L.push('| method | wall N=50 | N=250 | N=1000 | per pod 50→250 | per pod 250→1000 | growth | CPU growth |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const x of series) {
    const cpu = growthRatio(x.cpu);
    L.push(`| ${x.what} | ${x.ms.map(fmtMs).join(' | ')} | ${slopeCell(x.ms, perPodMs)} | ${cpu === null ? 'n/a' : fmtX(cpu)} |`);
  }
  L.push('');
  L.push('| method | peak RSS N=50 | N=250 | N=1000 | per pod 50→250 | per pod 250→1000 | growth |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const x of series) L.push(`| ${x.what} | ${x.kb.map(fmtMb).join(' | ')} | ${slopeCell(x.kb, perPodKb)} |`);
  const phases = series.find((x) => x.phases)?.phases;
  if (phases?.length) {
    L.push('', "sweep-nobackup's phases (wall time of each: planning it again, then its commands):", '');
    L.push('| phase | N=50 | N=250 | N=1000 | per pod 50→250 | per pod 250→1000 | growth |');
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const p of phases) L.push(`| ${p.phase} | ${p.ms.map(fmtMs).join(' | ')} | ${slopeCell(p.ms, perPodMs)} |`);
  }
  return L;
}

function render(
  opts: ReturnType<typeof parseArgs>,
  header: string[],
  rows: Row[],
  plans: Array<{ cfg: Config; samples: Sample[]; steps: number }>,
  startup: Startup,
  problems: string[],
  elapsedMs: number,
): string {
  const L: string[] = [];
  L.push('# cni-sweep benchmark results', '');
  L.push(
    'Produced by `npm run bench` (bench/run.ts); every number is the median of the runs, on fresh identical dirty Flannel nodes',
    '(test/helpers/flannel-node.ts: IPv4 + IPv6, a native nftables table; iptables-nft backend unless the configuration says legacy) in network namespaces.',
    '',
  );
  L.push('Machine:', '', ...header, `- runs per cell: ${opts.runs}; whole benchmark took ${fmtMs(elapsedMs)}`, '');
  L.push(
    'Methods: **manual** = one command per object, as the guides do it (`ip link delete` per veth and device, `iptables -t nat -D`/`-F`/`-X` per rule and chain, `rm` per file and `rmdir` per directory, `umount` + `rm` per netns, `ip route del` per route);',
  );
  L.push(
    '**floor** = one `rm -rf`, one `ip -batch -` (links and routes), one `iptables-restore --noflush -w` per backend/family, one `nft -f -`, one `umount` + one `rm` for the netns files;',
  );
  L.push(
    "Each node's `<root>/run` is a tmpfs of its own, shared, as systemd mounts `/run`, and `<root>/run/netns` a plain directory on it, as containerd (pkg/netns) and CRI-O make it: the pod namespace files are mounted once each, and cni-sweep's netns phase takes the path it takes on a node (one process unlinks them from a private mount namespace) instead of the root file system's (umount per file);",
  );
  L.push(
    '**floor-group** = the floor, with the links (pod veths, cni0, the flannel devices) deleted in one kernel batch (`link set dev <link> group <G>` for each, then one `link delete group <G>`);',
  );
  L.push(
    `**sweep** = \`cni-sweep run --yes --only ${CLEANUP_PHASES}\` (plus whatever the CLI runs regardless, e.g. its backup: see the per-phase table); **sweep-nobackup** = \`cni-sweep run --yes --skip ${NOT_CLEANUP}\`: the cleanup phases alone, exactly the work of the manual and floor scripts; **sweep-full** = \`cni-sweep run --yes\` (preflight, backup, drain/stop/start through the recording shims).`,
  );
  L.push(
    'manual and floor times count only the execution of their bash script (finding what to remove is free for them); cni-sweep times include Node start-up, inspection and planning.',
  );
  L.push(
    "Every command runs with a minimal environment, as `sudo` leaves it (PATH, plus the shims' variables for cni-sweep): a variable such as NODE_EXTRA_CA_CERTS in the shell that starts the benchmark would add its start-up cost to Node and never reaches a `sudo cni-sweep` on a node.",
    '',
  );
  L.push(
    "Peak memory: GNU time `%M` (largest resident set of the process and any of its children, e.g. iptables-save); for cni-sweep also the Node process's own VmHWM.",
    '',
  );
  L.push('| configuration | method | commands | median wall | min – max | peak RSS (tree) | cni-sweep VmHWM | vs floor | manual ÷ this |');
  L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const cfgName of opts.configs) {
    const rs = rows.filter((r) => r.cfg.name === cfgName);
    const floor = rs.find((r) => r.method === 'floor');
    const manual = rs.find((r) => r.method === 'manual');
    for (const r of rs) {
      const m = median(r.ms);
      L.push(
        `| ${r.cfg.label} | ${r.method} | ${r.commands} | ${fmtMs(m)} | ${fmtMs(Math.min(...r.ms))} – ${fmtMs(Math.max(...r.ms))} | ${fmtMb(maxKb(r.treeKb))} | ${r.method.startsWith('sweep') ? fmtMb(maxKb(r.nodeKb)) : ''} | ${floor ? fmtX(m / median(floor.ms)) : ''} | ${manual ? fmtX(median(manual.ms) / m) : ''} |`,
      );
    }
  }
  L.push(...linearity(opts, rows, plans));
  L.push('');
  L.push("## Where cni-sweep's time goes (sweep, median over the runs)", '');
  L.push(
    "Per phase: its wall time (planning it again against the node as it is then, and its commands, the backup's side by side), with the number of commands; then the slowest command. Before the first phase: Node start-up, detection, inspection and planning the whole run.",
    '',
  );
  L.push('| configuration | wall | before the first phase | per phase | slowest command |');
  L.push('| --- | ---: | ---: | --- | --- |');
  for (const r of rows.filter((x) => x.method === 'sweep' && x.breakdowns.length)) {
    const phases = r.breakdowns[0]!.phases.map((x) => x.phase);
    const per = phases.map((ph) => ({
      ph,
      n: r.breakdowns[0]!.steps.filter((x) => x.phase === ph).length,
      ms: median(r.breakdowns.map((b) => b.phases.find((x) => x.phase === ph)?.ms ?? 0)),
    }));
    const slowest = r.breakdowns[0]!.steps.map((x, i) => ({
      k: `${x.phase}: ${x.cmd}`,
      ms: median(r.breakdowns.map((b) => b.steps[i]?.ms ?? 0)),
    })).sort((a, b) => b.ms - a.ms)[0];
    const inPhases = median(r.breakdowns.map((b) => b.phases.reduce((n, x) => n + x.ms, 0)));
    L.push(
      `| ${r.cfg.label} | ${fmtMs(median(r.ms))} | ${fmtMs(median(r.ms) - inPhases)} | ${per.map((p) => `${p.ph} ${fmtMs(p.ms)} (${p.n})`).join(', ')} | \`${slowest!.k}\` ${fmtMs(slowest!.ms)} |`,
    );
  }
  L.push('');
  const netnsRows = rows.filter((r) => r.method === 'sweep' && r.breakdowns.length && /^(peers|plain)\d+$/.test(r.cfg.name));
  if (netnsRows.length) {
    L.push('## The netns phase beside docker and podman (sweep, median over the runs)', '');
    L.push(
      `peers*: ${DOCKER} docker containers (veths on docker0, namespaces under <root>/var/run/docker/netns) and ${PODMAN} podman containers (veths on cni-podman0, namespaces <root>/run/netns/netns-<uuid>) beside the pods; plain*: the same node without them. Wall time of the netns phase (planning it again, then its commands), and the whole cleanup run's wall and CPU time (user + system of the process tree).`,
      '',
    );
    L.push('| configuration | netns phase | its commands | cleanup run wall | cleanup run CPU |', '| --- | ---: | ---: | ---: | ---: |');
    for (const r of netnsRows) {
      const ph = median(r.breakdowns.map((b) => b.phases.find((x) => x.phase === 'netns')?.ms ?? 0));
      const n = r.breakdowns[0]!.steps.filter((x) => x.phase === 'netns').length;
      const cpu = r.cpuMs.filter((x): x is number => x !== null);
      L.push(`| ${r.cfg.label} | ${fmtMs(ph)} | ${n} | ${fmtMs(median(r.ms))} | ${cpu.length ? fmtMs(median(cpu)) : 'n/a'} |`);
    }
    L.push('');
  }
  const killRows = rows.filter((r) => KILLALL.has(r.method));
  if (killRows.length) {
    L.push("## The k3s and rke2 killall scripts' network part (a user's alternative)", '');
    L.push(
      "Their commands as bench/scripts.ts carries them (k3s-killall.sh from k3s's install.sh, rke2-killall.sh from rke2's bundle), with the node's paths under its root, run in the node's network namespace. Compared with the clean end state (what every other method leaves): **destroyed** = lines of it they removed (foreign links, rules and chains, files: kube-proxy's KUBE-* rules, podman's CNI-* chains and IPAM, ...), **left** = lines they left that the clean state lacks (Flannel's routes, native nftables table, ...). Times against cni-sweep's full run on the same node.",
      '',
    );
    L.push(
      '| configuration | method | median wall | median CPU | cni-sweep run (full): wall (CPU) | cni-sweep wall ÷ this | destroyed (foreign) | left (Flannel) |',
      '| --- | --- | ---: | ---: | ---: | ---: | --- | --- |',
    );
    for (const r of killRows) {
      const full = rows.find((x) => x.cfg.name === r.cfg.name && x.method === 'sweep-full');
      const cpu = r.cpuMs.filter((x): x is number => x !== null);
      const fullCpu = (full?.cpuMs ?? []).filter((x): x is number => x !== null);
      const a = r.against[0];
      L.push(
        `| ${r.cfg.label} | ${r.method} | ${fmtMs(median(r.ms))} | ${cpu.length ? fmtMs(median(cpu)) : 'n/a'} | ${full ? `${fmtMs(median(full.ms))}${fullCpu.length ? ` (CPU ${fmtMs(median(fullCpu))})` : ''}` : ''} | ${full ? fmtX(median(full.ms) / median(r.ms)) : ''} | ${a ? `${total(a.lost)}${a.lost.size ? ` (${byKind(a.lost)})` : ''}` : 'n/a'} | ${a ? `${total(a.extra)}${a.extra.size ? ` (${byKind(a.extra)})` : ''}` : 'n/a'} |`,
      );
    }
    L.push('');
  }
  L.push('## cni-sweep plan', '');
  L.push('| configuration | median wall | min – max | plan lines | peak RSS (tree) | VmHWM |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const p of plans) {
    const ms = p.samples.map((s) => s.ms);
    L.push(
      `| ${p.cfg.label} | ${fmtMs(median(ms))} | ${fmtMs(Math.min(...ms))} – ${fmtMs(Math.max(...ms))} | ${p.steps} | ${fmtMb(maxKb(p.samples.map((s) => s.treeKb)))} | ${fmtMb(maxKb(p.samples.map((s) => s.nodeKb)))} |`,
    );
  }
  L.push('');
  L.push(`## Start-up (${startup.tool})`, '');
  L.push('| command | median | min – max |', '| --- | ---: | ---: |');
  for (const r of startup.rows) L.push(`| \`${r.cmd}\` | ${r.medianMs.toFixed(1)} ms | ${r.minMs.toFixed(1)} – ${r.maxMs.toFixed(1)} ms |`);
  L.push('');
  L.push('## Targets', '');
  const t = rows.filter((r) => r.cfg.name === 'target');
  const tm = (m: Method) => t.find((r) => r.method === m);
  const sweep = tm('sweep');
  const floor = tm('floor');
  const manual = tm('manual');
  const check = (ok: boolean) => (ok ? 'met' : '**missed**');
  const group = tm('floor-group');
  const bare = tm('sweep-nobackup');
  for (const [what, r] of [
    ['cni-sweep (with its backup)', sweep],
    ['cni-sweep without the backup (the same work as manual and floor)', bare],
  ] as const) {
    if (!r) continue;
    if (floor)
      L.push(
        `- ${what} within 2x of the floor (N=250, M=5000): ${fmtX(median(r.ms) / median(floor.ms))}: ${check(median(r.ms) <= 2 * median(floor.ms))}`,
      );
    if (group)
      L.push(`  - and of the link-group floor: ${fmtX(median(r.ms) / median(group.ms))}: ${check(median(r.ms) <= 2 * median(group.ms))}`);
    if (manual)
      L.push(`  - >= 25x faster than manual: ${fmtX(median(manual.ms) / median(r.ms))}: ${check(median(manual.ms) >= 25 * median(r.ms))}`);
  }
  // Issue 19's targets, against the link-group floor measured in the same run.
  const full = tm('sweep-full');
  if (group && bare)
    L.push(
      `- cleanup phases <= 1.2x the link-group floor: ${fmtX(median(bare.ms) / median(group.ms))}: ${check(median(bare.ms) <= 1.2 * median(group.ms))}`,
    );
  if (group && full)
    L.push(
      `- full run <= 1.5x the link-group floor: ${fmtX(median(full.ms) / median(group.ms))}: ${check(median(full.ms) <= 1.5 * median(group.ms))}`,
    );
  const tp = plans.find((p) => p.cfg.name === 'target');
  if (tp)
    L.push(
      `- plan < 0.5 s (N=250, M=5000): ${fmtMs(median(tp.samples.map((s) => s.ms)))}: ${check(median(tp.samples.map((s) => s.ms)) < 500)}`,
    );
  const bp = plans.find((p) => p.cfg.name === 'big1000');
  if (bp) L.push(`- plan on the biggest node (N=1000): ${fmtMs(median(bp.samples.map((s) => s.ms)))}`);
  const worst = linearSeries(opts, rows, plans)
    .filter((x) => x.what === 'plan' || x.what.startsWith('sweep'))
    .flatMap((x) => [
      { what: `${x.what} wall`, r: growthRatio(x.ms) },
      { what: `${x.what} peak RSS`, r: growthRatio(x.kb) },
    ])
    .filter((x): x is { what: string; r: number } => x.r !== null)
    .sort((a, b) => b.r - a.r)[0];
  if (worst)
    L.push(
      `- time and memory linear from 50 to 1000 pods (cost per added pod from 250 to 1000 at most ${LINEAR_LIMIT}x that from 50 to 250; cni-sweep's runs and plan): worst ${worst.what} ${fmtX(worst.r)}: ${check(worst.r <= LINEAR_LIMIT)}`,
    );
  const peak = (names: string[]) => {
    const rs = rows.filter((r) => names.includes(r.cfg.name) && r.method.startsWith('sweep'));
    const ps = plans.filter((p) => names.includes(p.cfg.name));
    return maxKb([...rs.flatMap((r) => [...r.nodeKb, ...r.treeKb]), ...ps.flatMap((p) => p.samples.flatMap((x) => [x.nodeKb, x.treeKb]))]);
  };
  const memTarget = peak(['target']);
  if (memTarget !== null)
    L.push(
      `- cni-sweep peak memory < 100 MB (N=250, M=5000; run, full run and plan; Node VmHWM and process tree): ${fmtMb(memTarget)}: ${check(memTarget < 100 * 1024)}`,
    );
  for (const c of opts.configs.filter((n) => n !== 'target')) {
    const m = peak([c]);
    if (m !== null) L.push(`  - ${CONFIGS.find((x) => x.name === c)!.label}: ${fmtMb(m)}${m >= 150 * 1024 ? ' (over 150 MB)' : ''}`);
  }
  const legacy = rows.filter((r) => r.cfg.name === 'target-legacy');
  const ls = legacy.find((r) => r.method === 'sweep');
  const lm = legacy.find((r) => r.method === 'manual');
  const lf = legacy.find((r) => r.method === 'floor');
  if (ls && lm && lf)
    L.push(
      `- the same node on iptables-legacy (informational): cni-sweep ${fmtX(median(ls.ms) / median(lf.ms))} of the floor, ${fmtX(median(lm.ms) / median(ls.ms))} faster than manual`,
    );
  const v = startup.rows.find((r) => r.cmd.endsWith('--version'));
  const h = startup.rows.find((r) => r.cmd.endsWith('--help'));
  const bareNode = startup.rows.find((r) => r.cmd.endsWith('-e 0'));
  if (v && h && bareNode)
    L.push(
      `- start-up <= 1.3x \`node -e 0\` (${bareNode.medianMs.toFixed(0)} ms): --version ${v.medianMs.toFixed(0)} ms, --help ${h.medianMs.toFixed(0)} ms: ${check(v.medianMs <= 1.3 * bareNode.medianMs && h.medianMs <= 1.3 * bareNode.medianMs)}`,
    );
  L.push('');
  L.push('## End states', '');
  if (problems.length) L.push('Problems:', '', ...problems.map((p) => `- ${p}`));
  else
    L.push(
      "Every method left the same end state on every configuration and run (harness snapshot(): links, addresses, routes, iptables/ip6tables on both backends, native nftables, files; cni-sweep's own var/backups, var/lib/cni-sweep and lock excluded), with no Flannel state left; the killall scripts excepted, whose differences are counted above.",
    );
  L.push('');
  return L.join('\n');
}

mainBench().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  cleanupAll();
  process.exit(1);
});
