// The command-line contract through main(argv, io), on a fake node: exit codes, one-line errors,
// what goes to stdout (only the result) and what to stderr (progress), the JSON report and the
// plan script.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publishedSchema } from '../helpers/schema.js';
import { VERSION, type Io } from '../../src/cli.js';
import type { FakeHost } from '../../src/host/fake.js';
import { PHASE_NAMES } from '../../src/phases/index.js';
import { emptyRemoved, type Report } from '../../src/events.js';
import { runSummary } from '../../src/report/summary.js';
import { shortArgv } from '../../src/report/lines.js';
import { renderStep } from '../../src/plan.js';
import { executedCommands, planCommands } from '../helpers/runtime-state.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { PODMAN_CONFLIST } from '../helpers/flannel-node.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';
import { isolateKubeconfigEnv, runMain } from './helpers.js';

isolateKubeconfigEnv();

/** The CLI on a fake node (by default a dirty Flannel node). */
const cli = (argv: string[], host: FakeHost = dirtyFlannelNode().host, io: Partial<Io> & { answer?: string } = {}) =>
  runMain(argv, host, io);

const RUN = ['run', '--node', 'node-1', '--kubeconfig', '/etc/kubernetes/admin.conf'];
const oneLineError = (stderr: string) => {
  expect(stderr).toMatch(/^cni-sweep: error: [^\n]+\n( {2}hint: [^\n]+\n)?$/);
  expect(stderr).not.toMatch(/\n\s+at /);
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-unit-'));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('usage errors exit 2 with one clear line and no stack trace', () => {
  it('unknown phase', async () => {
    const r = await cli(['plan', '--skip', 'firewal']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `cni-sweep: error: unknown phase "firewal" (did you mean firewall?)\n  hint: phases: ${PHASE_NAMES.join(', ')}\n`,
    );
    expect(r.stdout).toBe('');
  });

  it('every unknown phase at once, each with its likely name', async () => {
    const r = await cli(['plan', '--only', 'firewal,routs,interfaces,zzz']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `cni-sweep: error: unknown phases "firewal" (did you mean firewall?), "routs" (did you mean routes?), "zzz"\n  hint: phases: ${PHASE_NAMES.join(', ')}\n`,
    );
  });

  it('unknown CNI', async () => {
    const r = await cli(['plan', '--cni', 'flanel']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `cni-sweep: error: unknown CNI "flanel" (did you mean flannel?)\n  hint: known CNIs: ${loadProfiles()
        .map((p) => p.name)
        .join(', ')}\n`,
    );
  });

  it('every unknown CNI at once; no guess for a name that is no typo of a known one', async () => {
    const r = await cli(['doctor', '--cni', 'calcio,weave,flannel']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cni-sweep: error: unknown CNIs "calcio" \(did you mean calico\?\), "weave"\n {2}hint: known CNIs: /);
  });

  it('CNI and distribution names are not case-sensitive', async () => {
    const { host } = dirtyFlannelNode();
    const r = await cli(['plan', '--cni', 'Flannel', '--distro', 'KubeADM', '--json', '--node', 'node-1'], host);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ cni: ['flannel'], distro: { name: 'kubeadm' }, wouldChange: true });
  });

  it('unknown distribution and backups action say what was probably meant', async () => {
    const d = await cli(['plan', '--distro', 'k3z']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/^cni-sweep: error: unknown distribution "k3z" \(did you mean k3s\?\)\n {2}hint: known distributions: /);
    const b = await cli(['backups', 'purne', '--keep', '1', '--root', tmp]);
    expect(b.code).toBe(2);
    expect(b.stderr).toBe(
      'cni-sweep: error: unknown backups action "purne" (did you mean prune?)\n  hint: use `cni-sweep backups` or `cni-sweep backups prune --keep N`\n',
    );
  });

  it('unknown option', async () => {
    const r = await cli(['run', '--yes', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("cni-sweep: error: unknown option '--frobnicate'\n  hint: see cni-sweep --help\n");
  });

  it('--only together with --skip', async () => {
    const r = await cli(['plan', '--only', 'firewall', '--skip', 'routes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('cni-sweep: error: --only and --skip cannot be used together\n');
  });

  it('--root that is not a directory, or does not exist', async () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, '');
    const r = await cli(['plan', '--root', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`cni-sweep: error: --root ${file}: not a directory\n`);
    expect(r.roots).toEqual([]);
    const missing = await cli(['plan', '--root', path.join(tmp, 'nope')]);
    expect(missing.code).toBe(2);
    oneLineError(missing.stderr);
  });

  it('bad values', async () => {
    for (const argv of [
      ['plan', '--pod-cidr', '10.244.0.0'],
      ['plan', '--drain-timeout', 'soon'],
    ]) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      oneLineError(r.stderr);
    }
  });

  // The second: V8 quotes the start of what it could not parse, and that start is a newline and terminal escapes.
  it.each(['{"name": "x",', '\x1b[2J\x1b[H\ncni-sweep: ok'])(
    'a CNI config that cannot be parsed (%j): one line naming the file, any control byte it quotes escaped',
    async (text) => {
      const { host } = dirtyFlannelNode();
      host.writeFile('/etc/cni/net.d/05-broken.conflist', text);
      const r = await cli(['plan'], host);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^cni-sweep: error: \/etc\/cni\/net\.d\/05-broken\.conflist: not valid JSON/);
      expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
      oneLineError(r.stderr);
    },
  );

  it('shows the stack only with --verbose', async () => {
    const r = await cli(['plan', '--skip', 'firewal', '--verbose']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cni-sweep: error: unknown phase "firewal" \(did you mean firewall\?\)\n/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  // A playbook that templated an empty command still fails: an empty word is no command, and
  // options without a command are bad usage. Only a bare `cni-sweep` is a request for help.
  it('an empty command word, or options without a command, is bad usage', async () => {
    for (const argv of [[''], ['--yes'], ['--json', 'run']]) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      oneLineError(r.stderr);
    }
  });
});

describe('refusals exit 3 and change nothing', () => {
  it('run as non-root', async () => {
    const { host } = dirtyFlannelNode({ isRoot: false });
    const r = await cli([...RUN, '--yes'], host);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('cni-sweep: error: run must be run as root\n  hint: use sudo, or `cni-sweep plan` to see what it would do\n');
    expect(host.calls).toEqual([]);
  });

  it('run without --yes and without a terminal', async () => {
    const { host } = dirtyFlannelNode();
    const r = await cli(RUN, host);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      'cni-sweep: error: refusing to change the node without confirmation\n  hint: pass --yes to run without a terminal\n',
    );
    expect(host.calls).toEqual([]);
  });

  it('run on a terminal, answered no', async () => {
    const { host } = dirtyFlannelNode();
    const r = await cli(RUN, host, { answer: 'n' });
    expect(r.code).toBe(3);
    expect(r.asked).toEqual(['Proceed? [y/N] ']);
    expect(r.stderr).toContain(
      'cni-sweep will change node node-1. It will remove:\n  - CNI config (1): /etc/cni/net.d/10-flannel.conflist\n',
    );
    expect(r.stderr).toMatch(/cni-sweep: not confirmed: nothing was changed\n$/);
    expect(r.stdout).toBe('');
    expect(host.calls).toEqual([]);
  });

  it('the prompt counts chains and rules in words: one chain, one rule; two chains, two rules', async () => {
    const { host } = dirtyFlannelNode();
    host.setIptables(
      'iptables-nft',
      [
        '*nat',
        ':POSTROUTING ACCEPT [0:0]',
        ':FLANNEL-POSTRTG - [0:0]',
        '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const r = await cli(RUN, host, { answer: 'n' });
    expect(r.code).toBe(3);
    const said = r.stderr.split('\n');
    expect(said).toContain('  - iptables-nft: 1 chain (FLANNEL-POSTRTG) and 1 rule in built-in or other chains');
    expect(said).toContain('  - ip6tables-nft: 2 chains (FLANNEL-POSTRTG, FLANNEL-FWD) and 2 rules in built-in or other chains');
    expect(r.stderr).not.toContain('(s)');
  });

  it('the prompt groups names that differ only per pod, says where the full list is, and a no is not an error', async () => {
    const { host } = dirtyFlannelNode({ pods: 20 });
    const r = await cli(RUN, host, { answer: 'no' });
    expect(r.code).toBe(3);
    const said = r.stderr.split('\n');
    expect(said).toContain('  - interface (22): veth* (20), flannel.1, cni0');
    expect(said).toContain(
      '  - CNI state (23): /run/flannel, /var/lib/cni/flannel, /var/lib/cni/networks/cbr0, /var/lib/cni/results/cbr0-*-eth0 (20)',
    );
    expect(said).toContain('  - network namespace (20): cni-* (20)');
    expect(said).toContain('Every command, in full: `cni-sweep plan` (with the same options).');
    expect(r.stderr).not.toContain('error');
    expect(said.at(-2)).toBe('cni-sweep: not confirmed: nothing was changed');
    expect(host.calls).toEqual([]);
  });

  it('another run holds the lock', async () => {
    const { host } = dirtyFlannelNode();
    host.holdLock('/run/cni-sweep.lock', 777);
    const r = await cli([...RUN, '--yes'], host);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cni-sweep: error: another cni-sweep run \(pid 777\) holds \/run\/cni-sweep\.lock\n {2}hint: /);
    expect(host.calls).toEqual([]);
  });
});

describe('run', () => {
  it('on a terminal, answered yes, runs and exits 0', async () => {
    const { host } = dirtyFlannelNode();
    const r = await cli(RUN, host, { answer: 'y' });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^cni-sweep: node node-1: removed flannel state in \d+\.\d s: 1 CNI config, 5 state paths, 4 interfaces, 2 routes, 9 firewall rules, 11 firewall chains, 2 nftables tables, 2 network namespaces$/,
    );
    const backup =
      /^cni-sweep: backup: (\/var\/backups\/cni-sweep\/\d{8}T\d{6}Z-node-1); to put the files and firewall rules back: cni-sweep restore (.*)$/.exec(
        lines[1] ?? '',
      );
    expect(backup?.[2]).toBe(backup?.[1]);
    expect(lines.slice(2)).toEqual(['cni-sweep: node still cordoned: `kubectl uncordon node-1` once the new CNI runs', '']);
    expect(r.stdout).not.toMatch(/command\(s\)/);
    expect(host.link('cni0')).toBeUndefined();
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(false);
  });

  it('the summary of a phase stopped part way, and of a run that only started what an earlier one left stopped', () => {
    const base: Report = {
      schemaVersion: 1,
      version: VERSION,
      startedAt: new Date(0).toISOString(),
      durationMs: 1234,
      removed: emptyRemoved(),
      changed: true,
      dryRun: false,
      node: 'node-1',
      root: '/',
      cni: ['flannel'],
      backup: null,
      phases: [],
      inspected: [],
      unreadable: [],
    };
    const stopped = runSummary({
      ...base,
      interrupted: 'SIGINT',
      phases: [
        { name: 'cni-state', status: 'interrupted', notes: [], steps: [] },
        { name: 'interfaces', status: 'skipped', notes: ['not run: SIGINT'], steps: [] },
      ],
    });
    expect(stopped.split('\n')).toEqual([
      'cni-sweep: node node-1: interrupted by SIGINT after 1.2 s; nothing was removed',
      'cni-sweep: not run: cni-state (stopped part way), interfaces; what they remove is still on the node',
      'cni-sweep: no backup was written',
      'cni-sweep: node not cordoned by this run',
      'cni-sweep: a rerun is safe: `cni-sweep run` removes only what is left',
      '',
    ]);
    expect(runSummary(base)).toBe('cni-sweep: node node-1: no CNI state to remove; started what an earlier run left stopped (1.2 s)\n');
    // kubectl drain cordons, then evicts: a drain that failed (a PDB, its timeout) left the node cordoned.
    const drainFailed = runSummary({
      ...base,
      changed: false,
      failed: { phase: 'drain', error: 'kubectl drain exited 1' },
      phases: [{ name: 'drain', status: 'failed', notes: [], steps: [{ argv: ['kubectl', 'drain', 'node-1'], status: 'failed', ms: 5 }] }],
    });
    expect(drainFailed).toContain(
      'cni-sweep: node may be cordoned (the drain failed after kubectl cordons): `kubectl uncordon node-1` if you do not rerun\n',
    );
    expect(drainFailed).not.toContain('not cordoned');
  });

  it('with --uncordon the summary does not say the node is cordoned', async () => {
    const { host } = dirtyFlannelNode();
    // The new CNI's config is in place, so the uncordon phase runs.
    host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    const r = await cli([...RUN, '--cni', 'flannel', '--yes', '--uncordon'], host);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cni-sweep: node node-1: removed flannel state in /);
    expect(r.stdout).not.toContain('cordoned');
  });

  it('sandboxes the runtime cannot stop: nothing is removed, and the hint names the cause and --keep-sandboxes', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.sandboxes = ['flan1'];
    host.pods.set('flan1', { name: 'web-1', namespace: 'default', ip: pods[0]!.ip });
    host.failOn((s) => s.argv[0] === 'crictl' && s.argv[1] === 'stopp', {
      code: 1,
      stderr: 'level=fatal msg="stopping the pod sandbox: failed to find plugin \\"calico\\" in path [/opt/cni/bin]"\n',
    });
    const r = await cli([...RUN, '--yes'], host);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cni-sweep: error: phase remove-sandboxes failed: crictl stopp flan1 exited 1: /m);
    expect(r.stderr).toContain('  hint: the runtime could not stop these pods (see its message);');
    expect(r.stderr).toContain('or pass --keep-sandboxes to leave them running without a network');
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(true);
  });

  it('interrupted before anything was removed: says so, what did not run, the backup, the cordon, and that a rerun is safe', async () => {
    const { host } = dirtyFlannelNode();
    let handler: ((sig: NodeJS.Signals) => void) | undefined;
    host.failOn((s) => {
      if (s.argv[0] === 'systemctl' && s.argv[1] === 'stop' && s.argv.includes('kubelet.service')) handler!('SIGINT');
      return false;
    });
    const r = await cli([...RUN, '--yes'], host, { onSignals: (h) => ((handler = h), () => {}) });
    expect(r.code).toBe(130);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^cni-sweep: node node-1: interrupted by SIGINT after \d+\.\d s; nothing was removed$/);
    expect(lines[1]).toBe(
      'cni-sweep: not run: cni-config, cni-state, bpf, interfaces, routes, firewall, netns; what they remove is still on the node',
    );
    expect(lines[2]).toMatch(
      /^cni-sweep: backup: \/var\/backups\/cni-sweep\/\S+; to put the files and firewall rules back: cni-sweep restore /,
    );
    expect(lines.slice(3)).toEqual([
      'cni-sweep: node still cordoned: `kubectl uncordon node-1` once the new CNI runs',
      'cni-sweep: a rerun is safe: `cni-sweep run` removes only what is left',
      '',
    ]);
    expect(r.stdout).not.toMatch(/removed flannel|command\(s\)/);
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(true);
  });

  it('a failed run names what it removed, the backup, the cordon and that a rerun is safe', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'ip6tables-nft-restore', { code: 2, stderr: 'ip6tables-nft-restore: line 2 failed\n' });
    const r = await cli([...RUN, '--yes'], host);
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^cni-sweep: node node-1: stopped after \d+\.\d s: phase firewall failed; removed 1 CNI config, 4 interfaces, \d+ firewall rules?, \d+ firewall chains?, 2 nftables tables$/,
    );
    // The firewall and the links go beside cni-state once cni-config has ended: the links went
    // before the firewall failed; the phases that had not started a step did not start one.
    expect(lines[1]).toBe('cni-sweep: not run: cni-state, routes, netns; what they remove is still on the node');
    expect(lines[2]).toMatch(
      /^cni-sweep: backup: \/var\/backups\/cni-sweep\/\S+; to put the files and firewall rules back: cni-sweep restore /,
    );
    expect(lines.slice(3)).toEqual([
      'cni-sweep: node still cordoned: `kubectl uncordon node-1` once the new CNI runs',
      'cni-sweep: a rerun is safe: `cni-sweep run` removes only what is left (fix the cause of the firewall failure first)',
      '',
    ]);
    expect(r.stderr).toMatch(/cni-sweep: error: phase firewall failed: /);
  });

  it('--yes --json: stdout is exactly one JSON report, progress goes to stderr', async () => {
    const { host } = dirtyFlannelNode();
    const r = await cli([...RUN, '--yes', '--json'], host);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ changed: true, dryRun: false, node: 'node-1', cni: ['flannel'] });
    expect(report.backup).toMatch(/^\/var\/backups\/cni-sweep\/\d{8}T\d{6}Z-node-1$/);
    expect(report.phases.map((p: { name: string }) => p.name)).toEqual(PHASE_NAMES);
    const iface = report.phases.find((p: { name: string }) => p.name === 'interfaces');
    expect(iface.status).toBe('ok');
    expect(iface.steps).toHaveLength(1);
    expect(iface.steps[0]).toMatchObject({ argv: ['ip', '-batch', '-'], status: 'ok' });
    expect(iface.steps[0].stdin).toMatch(/link set dev cni0 group 4242424\nlink delete group 4242424\n$/);
    expect(typeof iface.steps[0].ms).toBe('number');
    expect(r.stderr).toMatch(/^cni-sweep: interfaces ok, \d+ ms$/m);
    expect(r.stderr).toContain('cni-sweep: found flannel: config /etc/cni/net.d/10-flannel.conflist');
  });

  it('off a terminal the progress is the compact lines a terminal shows; whole commands only with --verbose; --quiet keeps warnings only', async () => {
    const plain = await cli([...RUN, '--yes'], dirtyFlannelNode().host);
    expect(plain.code).toBe(0);
    // One line per phase, as the spinner ends it; no command line that went well.
    expect(plain.stderr).toMatch(/^cni-sweep: interfaces ok, \d+ ms$/m);
    expect(plain.stderr).toMatch(/^cni-sweep: routes ok, \d+ ms$/m);
    expect(plain.stderr).toMatch(/^cni-sweep: remove-sandboxes nothing to do, \d+ ms$/m);
    expect(plain.stderr).not.toMatch(/ran: |nothing-to-do|rm -rf|tar -C/);
    const verbose = await cli([...RUN, '--yes', '--verbose'], dirtyFlannelNode().host);
    expect(verbose.stderr).toMatch(/^cni-sweep: {3}ran: rm -rf -- \/run\/flannel \/var\/lib\/cni\/flannel .*-eth0 \(\d+ ms\)$/m);
    const quiet = await cli([...RUN, '--yes', '-q'], dirtyFlannelNode().host);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    // The result is on stdout all the same.
    expect(quiet.stdout).toMatch(/^cni-sweep: node node-1: removed flannel state in .*\n.*cni-sweep restore /);
  });

  it('every run appends one JSON line to /var/log/cni-sweep.log: time, node, CNI, changed, counts, backup, exit', async () => {
    const { host } = dirtyFlannelNode();
    const no = await cli(RUN, host, { answer: 'n' });
    expect(no.code).toBe(3);
    const first = await cli([...RUN, '--yes', '--json'], host);
    const second = await cli([...RUN, '--yes'], host);
    expect(second.code).toBe(0);
    await cli(['plan', '--node', 'node-1'], host); // a plan is no run
    const lines = (await host.readFile('/var/log/cni-sweep.log'))!.split('\n');
    expect(lines.pop()).toBe('');
    const [refused, ran, clean] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    const zero = Object.fromEntries(Object.keys(emptyRemoved()).map((k) => [k, 0]));
    expect(refused).toMatchObject({ node: 'node-1', cni: ['flannel'], changed: false, removed: zero, backup: null, exit: 3 });
    const report = JSON.parse(first.stdout);
    expect(ran).toEqual({
      time: report.startedAt,
      node: 'node-1',
      cni: ['flannel'],
      changed: true,
      removed: {
        ...zero,
        configs: 1,
        statePaths: 5,
        interfaces: 4,
        routes: 2,
        firewallRules: 9,
        firewallChains: 11,
        nftablesTables: 2,
        namespaces: 2,
      },
      backup: report.backup,
      exit: 0,
      durationMs: report.durationMs,
      version: VERSION,
    });
    expect(clean).toMatchObject({ cni: [], changed: false, backup: null, exit: 0 });
  });

  it('a long command line is shortened to its words before the operands and a count', () => {
    const paths = Array.from({ length: 23 }, (_, i) => `/var/lib/cni/results/cbr0-${'f'.repeat(64)}${i}-eth0`);
    expect(shortArgv(['rm', '-rf', '--', ...paths])).toBe('rm -rf -- (23 paths)');
    expect(shortArgv(['tar', '-C', '/', '-cpf', '/b/files.tar', '--', ...paths.map((p) => p.slice(1))])).toBe(
      'tar -C / -cpf /b/files.tar -- (23 arguments)',
    );
    expect(shortArgv(['ip', '-batch', '-'])).toBe('ip -batch -');
  });

  it('a failing phase exits 1, says which command failed, and the JSON report names it', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'ip6tables-nft-restore', { code: 2, stderr: 'ip6tables-nft-restore: line 2 failed\n' });
    const r = await cli([...RUN, '--yes', '--json'], host);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.failed).toEqual({
      phase: 'firewall',
      error: 'ip6tables-nft-restore --noflush -w exited 2: ip6tables-nft-restore: line 2 failed',
      argv: ['ip6tables-nft-restore', '--noflush', '-w'],
      exitCode: 2,
      stderr: 'ip6tables-nft-restore: line 2 failed\n',
    });
    expect(report.phases.find((p: { name: string }) => p.name === 'firewall').status).toBe('failed');
    expect(r.stderr).toMatch(
      /cni-sweep: error: phase firewall failed: ip6tables-nft-restore --noflush -w exited 2: ip6tables-nft-restore: line 2 failed\n$/,
    );
    expect(host.units.get('kubelet.service')).toBe('active');
  });

  it('exits 143 after SIGTERM, restarting what it stopped, and unhooks its signal handler', async () => {
    const { host } = dirtyFlannelNode();
    let handler: ((sig: NodeJS.Signals) => void) | undefined;
    let unhooked = false;
    host.failOn((s) => {
      if (s.argv[0] === 'rm' && s.argv[1] === '-rf') handler!('SIGTERM');
      return false;
    });
    const r = await cli([...RUN, '--yes'], host, {
      onSignals: (h) => {
        handler = h;
        return () => {
          unhooked = true;
        };
      },
    });
    expect(r.code).toBe(143);
    expect(unhooked).toBe(true);
    expect(host.paths().filter((p) => p.startsWith('/run/netns/cni-')).length).toBe(2);
    expect(host.units.get('containerd.service')).toBe('active');
    // What went is counted, what did not is named: the config, state, links and rules went, the
    // namespaces and routes did not.
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      // The firewall's and the links' batches, beside cni-state, had started when the signal came.
      expect.stringMatching(
        /^cni-sweep: node node-1: interrupted by SIGTERM after \d+\.\d s; removed 1 CNI config, 5 state paths, 4 interfaces, \d+ firewall rules, \d+ firewall chains, 2 nftables tables$/,
      ),
      'cni-sweep: not run: routes, netns; what they remove is still on the node',
    ]);
  });

  it('on a clean node reports nothing to do and exits 0', async () => {
    const host = foreignNode();
    const r = await cli([...RUN, '--yes', '--json'], host);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ changed: false, cni: [], backup: null });
    expect(r.stderr).toContain('cni-sweep: no CNI state found on this node\n');
    expect(host.calls).toEqual([]);
  });
});

describe('the JSON report follows schema/report.schema.json', () => {
  const { file: schemaFile, validator, issues } = publishedSchema('report');
  const valid = (doc: unknown) => {
    expect(issues(doc)).toEqual([]);
  };
  const names = (removed: Record<string, { count: number; names: string[] }>) =>
    Object.fromEntries(Object.entries(removed).map(([k, v]) => [k, v.names]));

  it('the schema is versioned and rejects what it does not describe', () => {
    expect(schemaFile.$id).toBe('urn:cni-sweep:schema:report:1');
    expect(validator.safeParse({}).success).toBe(false);
  });

  it('a run: valid, with version, start, duration and what it removed by kind (the same as its plan said it would)', async () => {
    const t0 = Date.now();
    const plan = await cli(['plan', '--json', '--node', 'node-1', '--kubeconfig', '/k'], dirtyFlannelNode().host);
    const { host } = dirtyFlannelNode();
    const r = await cli([...RUN, '--yes', '--json'], host);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    valid(report);
    expect(report).toMatchObject({ schemaVersion: 1, version: VERSION, changed: true });
    expect(Date.parse(report.startedAt)).toBeGreaterThanOrEqual(t0 - 1000);
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    expect(report.removed.interfaces.names).toEqual(expect.arrayContaining(['cni0', 'flannel.1']));
    expect(report.removed.configs).toEqual({ count: 1, names: ['/etc/cni/net.d/10-flannel.conflist'] });
    for (const k of Object.values<{ count: number; names: string[] }>(report.removed)) expect(k.count).toBe(k.names.length);
    expect(report.wouldChange).toBeUndefined();
    expect(host.link('cni0')).toBeUndefined();
    const planned = JSON.parse(plan.stdout);
    valid(planned);
    expect(planned.wouldChange).toBe(true);
    expect(planned.changed).toBe(false);
    expect(Object.values(planned.removed).every((k) => (k as { count: number }).count === 0)).toBe(true);
    expect(names(planned.wouldRemove)).toEqual(names(report.removed));
  });

  it('a plan of a clean node would not change it; a clean run removed nothing', async () => {
    const plan = await cli(['plan', '--json', '--node', 'node-1'], foreignNode());
    valid(JSON.parse(plan.stdout));
    expect(JSON.parse(plan.stdout).wouldChange).toBe(false);
    const run = await cli([...RUN, '--yes', '--json'], foreignNode());
    const report = JSON.parse(run.stdout);
    valid(report);
    expect(Object.values(report.removed).every((k) => (k as { count: number }).count === 0)).toBe(true);
  });

  it('failed and interrupted runs are valid reports too, counting only what was removed', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'ip6tables-nft-restore', { code: 2, stderr: 'ip6tables-nft-restore: line 2 failed\n' });
    const failed = JSON.parse((await cli([...RUN, '--yes', '--json'], host)).stdout);
    valid(failed);
    expect(failed.removed.firewallRules.count).toBeGreaterThan(0);
    // The failed firewall, beside the links' batch, stopped the phases that had not started a step.
    expect(failed.removed.interfaces.count).toBe(4);
    expect(failed.removed.namespaces.count).toBe(0);

    const other = dirtyFlannelNode().host;
    let handler: ((sig: NodeJS.Signals) => void) | undefined;
    other.failOn((s) => {
      if (s.argv[0] === 'systemctl' && s.argv[1] === 'stop') handler!('SIGINT');
      return false;
    });
    const r = await cli([...RUN, '--yes', '--json'], other, { onSignals: (h) => ((handler = h), () => {}) });
    expect(r.code).toBe(130);
    const interrupted = JSON.parse(r.stdout);
    valid(interrupted);
    expect(interrupted.interrupted).toBe('SIGINT');
    expect(Object.values(interrupted.removed).every((k) => (k as { count: number }).count === 0)).toBe(true);
  });

  it('a field the schema does not list fails validation', async () => {
    const report = JSON.parse((await cli(['plan', '--json', '--node', 'node-1'], foreignNode())).stdout);
    expect(validator.safeParse({ ...report, surprise: 1 }).success).toBe(false);
    expect(validator.safeParse({ ...report, removed: { ...report.removed, routes: { count: 1 } } }).success).toBe(false);
  });
});

describe('plan', () => {
  it('two identical nodes planned at different times differ only in the header lines of time and node', async () => {
    const a = await cli(['plan', '--node', 'node-1', '--kubeconfig', '/k'], dirtyFlannelNode().host);
    await new Promise((r) => setTimeout(r, 1100)); // a backup directory's name counts seconds
    const b = await cli(['plan', '--node', 'node-2', '--kubeconfig', '/k'], dirtyFlannelNode().host);
    const linesB = b.stdout.split('\n');
    const differ = a.stdout.split('\n').flatMap((l, i) => (l === linesB[i] ? [] : [`${l}  |  ${linesB[i]}`]));
    const [createdA, createdB] = [a, b].map((r) => /^CREATED=(.*)$/m.exec(r.stdout)![1]!);
    const [dirA, dirB] = [a, b].map((r) => /^BACKUP=(.*)$/m.exec(r.stdout)![1]!);
    expect(dirA).toMatch(/^\/var\/backups\/cni-sweep\/\d{8}T\d{6}Z-node-1$/);
    expect(linesB).toHaveLength(a.stdout.split('\n').length);
    expect(differ).toEqual([
      '# node: node-1  |  # node: node-2',
      `# planned: ${createdA}  |  # planned: ${createdB}`,
      'NODE=node-1  |  NODE=node-2',
      `CREATED=${createdA}  |  CREATED=${createdB}`,
      `BACKUP=${dirA}  |  BACKUP=${dirB}`,
    ]);
    // Counts by kind in the header, one path per line, and why the links go into a group.
    expect(a.stdout).toContain(
      '\n# would remove: 1 CNI config, 5 state paths, 4 interfaces, 2 routes, 9 firewall rules, 11 firewall chains, 2 nftables tables, 2 network namespaces\n',
    );
    expect(a.stdout).toMatch(
      /\nrm -rf -- \\\n {2}\/run\/flannel \\\n {2}\/var\/lib\/cni\/flannel \\\n {2}\/var\/lib\/cni\/networks\/cbr0 \\\n/,
    );
    expect(a.stdout).toContain(
      '\nmkdir -p -m 0700 -- /var/backups/cni-sweep\nmkdir -m 0700 -- \\\n  "$BACKUP" \\\n  "$BACKUP"/firewall \\\n  "$BACKUP"/node\n',
    );
    expect(a.stdout).toMatch(/\n# the links go into one unused link group[^\n]*\nip -batch - <<'CNI_SWEEP_EOF'\nlink set dev/);
    // The phases a run starts beside others say which: the earlier phases with commands they do not
    // wait for, directly or through another (netns waits for interfaces, and so for bpf, not cni-state).
    expect(a.stdout.split('\n').filter((l) => l.startsWith('# a run starts it'))).toEqual([
      '# a run starts it once cni-config and bpf have ended, beside cni-state: it changes none of what they change',
      '# a run starts it once cni-config has ended, beside cni-state, interfaces, routes: it changes none of what they change',
      '# a run starts it once interfaces has ended, beside cni-state, routes, firewall: it changes none of what they change',
    ]);
    execFileSync('bash', ['-n'], { input: a.stdout });
  });

  it('the plan script is the commands a run executes, once bash has put in the header values', async () => {
    const plan = await cli(['plan', '--node', 'node-1', '--kubeconfig', '/k'], dirtyFlannelNode().host);
    const run = await cli(['run', '--yes', '--json', '--node', 'node-1', '--kubeconfig', '/k'], dirtyFlannelNode().host);
    expect(run.code).toBe(0);
    const ran = executedCommands(JSON.parse(run.stdout));
    expect(ran.length).toBeGreaterThan(20);
    expect(planCommands(plan.stdout)).toEqual(ran);
  });

  it('the plan script, run by bash, starts what it stopped again when a later command fails, as run does; once when nothing fails', async () => {
    const runScript = (script: string, failBatch: boolean) => {
      // Every command the script runs is logged and succeeds (bash's command_not_found_handle: the
      // PATH holds only ip, whose link batch may fail once the services are stopped, and a real
      // mkdir for the backup's directories, in the test's own backup dir).
      const bin = fs.mkdtempSync(path.join(tmp, 'bin-'));
      const log = path.join(bin, 'log');
      const fail = failBatch ? '[ "$1" != -batch ]' : 'true';
      fs.writeFileSync(path.join(bin, 'ip'), `#!/bin/bash\necho "ip $*" >> ${log}\n${fail}\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(bin, 'mkdir'), `#!/bin/bash\nexec /bin/mkdir "$@"\n`, { mode: 0o755 });
      const logged = `command_not_found_handle() { echo "$*" >> ${log}; }\n${script}`;
      const r = spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', logged], { env: { PATH: bin }, encoding: 'utf8', input: '' });
      const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
      return { code: r.status, calls: calls.filter((c) => /^(systemctl (stop|start)|ip -batch) /.test(c)) };
    };
    const plan = async () =>
      (
        await cli(
          ['plan', '--node', 'node-1', '--kubeconfig', '/k', '--backup-dir', fs.mkdtempSync(path.join(tmp, 'backups-'))],
          dirtyFlannelNode().host,
        )
      ).stdout;
    const script = await plan();
    expect(script).toContain(
      'It stops at the first command that fails (or on Ctrl-C), and then starts again what it had stopped, as run does.',
    );
    const failed = runScript(script, true);
    expect(failed.code).not.toBe(0);
    expect(failed.calls).toEqual([
      'systemctl stop kubelet.service',
      'systemctl stop containerd.service',
      'ip -batch -',
      'systemctl start containerd.service kubelet.service',
    ]);
    const ok = runScript(await plan(), false);
    expect(ok.code).toBe(0);
    expect(ok.calls).toEqual([
      'systemctl stop kubelet.service',
      'systemctl stop containerd.service',
      'ip -batch -',
      'ip -batch -',
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
  });

  it('a heredoc carrying the header values gives bash exactly the bytes of the step', () => {
    const vars = { node: 'node-1', created: '2026-11-30T07:16:42.696Z', backup: '/var/backups/cni-sweep/20261130T071642Z-node-1' };
    const stdin = `{\n  "created": "${vars.created}",\n  "node": "node-1",\n  "files": ["/run/a$(touch x)\`b\`\\\\c \\"q\\" $HOME \\\\"],\n  "dir": "${vars.backup}"\n}\n`;
    const line = renderStep({ argv: ['cat'], stdin }, vars);
    expect(line).toMatch(/^cat <<CNI_SWEEP_EOF\n/);
    expect(line).toContain('"node": "${NODE}"');
    const out = execFileSync('bash', ['-c', `set -eu\nNODE=${vars.node}\nCREATED=${vars.created}\nBACKUP=${vars.backup}\n${line}`], {
      encoding: 'utf8',
      cwd: tmp,
    });
    expect(out).toBe(stdin);
    expect(fs.existsSync(path.join(tmp, 'x'))).toBe(false);
  });

  it('prints a bash script on stdout, with stdin as quoted heredocs, and changes nothing', async () => {
    const { host, pods } = dirtyFlannelNode();
    const r = await cli(['plan', '--node', 'node-1', '--kubeconfig', '/k'], host);
    expect(r.code).toBe(0);
    expect(host.calls).toEqual([]);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      '#!/usr/bin/env bash',
      `# cni-sweep ${VERSION} plan: the exact commands \`cni-sweep run\` would execute, in order.`,
      '# node: node-1',
    ]);
    expect(r.stdout).toContain('\nset -euo pipefail\n');
    expect(r.stdout).toContain(
      `\nip -batch - <<'CNI_SWEEP_EOF'\nlink set dev ${pods[0]!.veth} group 4242424\nlink set dev ${pods[1]!.veth} group 4242424\nlink set dev flannel.1 group 4242424\nlink set dev cni0 group 4242424\nlink delete group 4242424\nCNI_SWEEP_EOF\n`,
    );
    expect(r.stdout).toContain(
      "\nnft -f - <<'CNI_SWEEP_EOF'\ndelete table ip flannel-ipv4\ndelete table ip6 flannel-ipv6\nCNI_SWEEP_EOF\n",
    );
    expect(r.stdout).toContain('\nrm -f -- /etc/cni/net.d/10-flannel.conflist\n');
    expect(r.stdout).toContain('\nNODE=node-1\n');
    expect(r.stdout).toContain('\nkubectl --kubeconfig /k drain "$NODE" --ignore-daemonsets --delete-emptydir-data --timeout=300s\n');
    // bash accepts it as a script
    execFileSync('bash', ['-n'], { input: r.stdout });
    expect(r.stderr).not.toContain('#!/usr/bin/env bash');
  });

  it('run --dry-run prints the same plan and needs neither root nor --yes', async () => {
    const { host } = dirtyFlannelNode({ isRoot: false });
    const a = await cli(['plan', '--node', 'node-1', '--kubeconfig', '/k'], host);
    const b = await cli(['run', '--dry-run', '--node', 'node-1', '--kubeconfig', '/k'], host);
    expect(b.code).toBe(0);
    const undated = (s: string) => s.replace(/\d{8}T\d{6}Z/g, 'TIME').replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'ISO');
    expect(undated(b.stdout)).toBe(undated(a.stdout));
    // A script can swap run for plan: plan takes --yes and ignores it.
    const c = await cli(['plan', '--yes', '--node', 'node-1', '--kubeconfig', '/k'], host);
    expect(c.code).toBe(0);
    expect(undated(c.stdout)).toBe(undated(a.stdout));
    expect(host.calls).toEqual([]);
  });

  it('without root, says in the script and on stderr what it could not read, and still exits 0', async () => {
    const { host } = dirtyFlannelNode({ isRoot: false });
    host.unreadable.add('/var/lib/cni/results');
    host.failQuery((a) => a[0] === 'iptables-nft-save', {
      code: 4,
      stderr: 'iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
    });
    const r = await cli(['plan'], host);
    expect(r.code).toBe(0);
    const header = r.stdout.split('set -euo pipefail')[0] ?? '';
    expect(header).toContain(
      '\n# could not read: iptables-nft-save: iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
    );
    expect(header).toContain('\n# could not read: /var/lib/cni/results: permission denied\n');
    // What failed is not called inspected, and one line says what the plan therefore leaves out.
    expect(header).toMatch(/\n# inspected: (?!.*iptables-nft-save)[^\n]*\n# not read: iptables-nft-save\n/);
    expect(header).toContain(
      '\n# LEFT OUT: iptables rules, /var/lib/cni/results could not be read (not root): this plan has no changes for them; a run as root reads them and may remove more\n',
    );
    expect(header.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([]);
    expect(r.stderr).toContain('cni-sweep: warning: could not read /var/lib/cni/results: permission denied\n');
    expect(r.stdout).not.toContain('iptables-nft-restore');
  });

  it('--json prints the report with planned steps', async () => {
    const r = await cli(['plan', '--json', '--node', 'node-1']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report)).toEqual(expect.arrayContaining(['changed', 'dryRun', 'node', 'cni', 'backup', 'phases']));
    expect(report).toMatchObject({ changed: false, dryRun: true, node: 'node-1', cni: ['flannel'] });
    const cfg = report.phases.find((p: { name: string }) => p.name === 'cni-config');
    expect(cfg).toMatchObject({
      name: 'cni-config',
      status: 'ok',
      steps: [{ argv: ['rm', '-f', '--', '/etc/cni/net.d/10-flannel.conflist'], status: 'planned', ms: 0 }],
    });
  });

  it('--skip and --only choose the phases of the plan', async () => {
    const skip = JSON.parse((await cli(['plan', '--json', '--skip', 'drain,firewall'])).stdout);
    expect(skip.phases.filter((p: { status: string }) => p.status === 'skipped').map((p: { name: string }) => p.name)).toEqual([
      'drain',
      'firewall',
      'modules',
    ]);
    // A cleanup phase never runs without the backup of what it removes.
    const only = JSON.parse((await cli(['plan', '--json', '--only', 'routes'])).stdout);
    expect(only.phases.filter((p: { status: string }) => p.status !== 'skipped').map((p: { name: string }) => p.name)).toEqual([
      'backup',
      'routes',
    ]);
    const onlyServices = JSON.parse((await cli(['plan', '--json', '--only', 'drain,uncordon'])).stdout);
    expect(onlyServices.phases.filter((p: { status: string }) => p.status !== 'skipped').map((p: { name: string }) => p.name)).toEqual([
      'drain',
      'uncordon',
    ]);
    const withModules = JSON.parse((await cli(['plan', '--json', '--with', 'modules'])).stdout);
    expect(withModules.phases.filter((p: { status: string }) => p.status === 'skipped').map((p: { name: string }) => p.name)).toEqual([]);
    // remove-sandboxes runs by default now; --with remove-sandboxes, from older playbooks, is still accepted.
    const withSandboxes = JSON.parse((await cli(['plan', '--json', '--with', 'remove-sandboxes'])).stdout);
    expect(withSandboxes.phases.filter((p: { status: string }) => p.status === 'skipped').map((p: { name: string }) => p.name)).toEqual([
      'modules',
    ]);
    const r = await cli(['plan', '--with', 'firewall']);
    expect(r.code).toBe(2);
    oneLineError(r.stderr);
  });

  it('resolves every path under --root', async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'root-'));
    const { host } = dirtyFlannelNode({ root });
    const r = await cli(['plan', '--root', root], host);
    expect(r.code).toBe(0);
    expect(r.roots).toEqual([root]);
    expect(r.stdout).toContain(`\nrm -f -- ${root}/etc/cni/net.d/10-flannel.conflist\n`);
    expect(r.stdout).toContain(`# root: ${root}\n`);
  });

  it('a --root given through a symlink is the directory it leads to: mount points are compared with paths under it', async () => {
    const root = fs.mkdtempSync(path.join(tmp, 'root-'));
    const link = `${root}-link`;
    fs.symlinkSync(root, link);
    const r = await cli(['plan', '--root', link], dirtyFlannelNode({ root }).host);
    expect(r.code).toBe(0);
    expect(r.roots).toEqual([root]);
  });
});

describe('what is removed, what is kept, and what the operator is told', () => {
  const calicoBeside = () =>
    dirtyFlannelNode()
      .host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST)
      .writeFile('/var/lib/calico/nodename', 'node-1')
      .addProcess(['calico-node', '-felix'], { pid: 4242 });

  it('without --cni a live Calico is kept: the plan header, the JSON report and the prompt say per CNI remove or keep, and why', async () => {
    const plan = await cli(['plan', '--node', 'node-1', '--kubeconfig', '/k'], calicoBeside());
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(
      [
        '#   found calico: config /etc/cni/net.d/10-calico.conflist, state /var/lib/calico',
        '#   remove flannel: leftovers: no agent of it runs and the runtime does not use its config',
        '#   keep calico: live: its agent runs: calico-node (pid 4242)',
      ].join('\n'),
    );
    expect(plan.stdout).toMatch(/^# cni: flannel \(detected\)\n# {3}found flannel: config \/etc\/cni\/net\.d\/10-flannel\.conflist, /m);
    expect(plan.stdout).not.toMatch(/^rm .*calico/m);
    const json = JSON.parse((await cli(['plan', '--json', '--node', 'node-1', '--kubeconfig', '/k'], calicoBeside())).stdout);
    expect(json.cni).toEqual(['flannel']);
    expect(json.targets).toEqual([
      { cni: 'flannel', action: 'remove', why: 'leftovers: no agent of it runs and the runtime does not use its config' },
      { cni: 'calico', action: 'keep', why: 'live: its agent runs: calico-node (pid 4242)' },
    ]);
    const host = calicoBeside();
    const r = await cli(RUN, host, { answer: 'n' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      'Per CNI:\n  remove flannel: leftovers: no agent of it runs and the runtime does not use its config\n  keep calico: live: its agent runs: calico-node (pid 4242)\n',
    );
  });

  it('--cni naming a live CNI refuses (exit 3) with the pid and how to stop it; naming the one pods use is allowed and the prompt says so', async () => {
    const refused = await cli(['plan', '--cni', 'calico'], calicoBeside());
    expect(refused.code).toBe(3);
    oneLineError(refused.stderr);
    expect(refused.stderr).toContain('calico-node (pid 4242)');
    const host = dirtyFlannelNode().host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    const r = await cli([...RUN, '--cni', 'calico'], host, { answer: 'n' });
    expect(r.code).toBe(3);
    expect(r.stderr.split('\n').filter((l) => /pods use it now/.test(l))).toEqual([
      "  remove calico: named with --cni; pods use it now: /etc/cni/net.d/10-calico.conflist is the runtime's config, so new pods get no network until another CNI is installed",
    ]);
  });

  it('without a kubeconfig: plan and prompt say the node will not be drained; run --yes refuses (exit 3) unless --skip drain', async () => {
    const args = ['--node', 'node-1'];
    const plan = await cli(['plan', ...args]);
    expect(plan.stdout).toContain(
      '# WARNING: the node will not be drained: its pods lose networking (no kubeconfig found (--kubeconfig, $KUBECONFIG or /etc/kubernetes/admin.conf); pass --kubeconfig, or --skip drain)\n',
    );
    const asked = await cli(['run', ...args], dirtyFlannelNode().host, { answer: 'n' });
    expect(asked.stderr).toMatch(/^warning: the node will not be drained: its pods lose networking \(/m);
    const { host } = dirtyFlannelNode();
    const refused = await cli(['run', '--yes', ...args], host);
    expect(refused.code).toBe(3);
    oneLineError(refused.stderr.slice(refused.stderr.indexOf('cni-sweep: error:')));
    expect(refused.stderr).toContain('cni-sweep: error: the node will not be drained: its pods lose networking');
    expect(refused.stderr).toContain('hint: pass --kubeconfig <file> to drain it first, or --skip drain');
    expect(host.calls).toEqual([]);
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(true);
    const ok = await cli(['run', '--yes', '--skip', 'drain', ...args], host);
    expect(ok.code).toBe(0);
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(false);
  });

  it('run --yes refused for want of a kubeconfig starts none of the reads of the phases after drain (sandboxes, units, backup)', async () => {
    const { host } = dirtyFlannelNode();
    const refused = await cli(['run', '--yes', '--node', 'node-1'], host);
    expect(refused.code).toBe(3);
    const asked = host.queries.map((q) => q.join(' '));
    expect(asked.filter((q) => q.startsWith('crictl '))).toEqual([]);
    expect(asked).not.toContain('nft list ruleset');
    // Only the distribution's detection asks systemd (kubelet.service, kubeadm's runtimes, k3s.service ...): not the stop phases.
    expect([...new Set(asked.filter((q) => q.startsWith('systemctl ')).map((q) => q.split(' ').slice(0, 4).join(' ')))]).toEqual([
      'systemctl is-active kubelet.service cri-docker.service',
    ]);
    expect(host.calls).toEqual([]);
  });

  it("the plan warns when the runtime's first config after the removal would be podman's bridge", async () => {
    const r = await cli(['plan', '--node', 'node-1', '--kubeconfig', '/k'], dirtyFlannelNode({ podman: true }).host);
    expect(r.stdout).toMatch(
      /^# WARNING: after the removal the runtime's first CNI config is \/etc\/cni\/net\.d\/87-podman-bridge\.conflist \(network podman, plugins bridge, portmap, firewall, tuning\), which is no pod network: /m,
    );
    const calico = dirtyFlannelNode({ podman: true }).host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    expect((await cli(['plan', '--cni', 'flannel', '--kubeconfig', '/k'], calico)).stdout).not.toContain('WARNING');
  });
});

describe('what the preflight says it keeps', () => {
  it('with no CNI to remove, the configs it keeps are not said to be "not owned by" an empty list', async () => {
    const host = foreignNode();
    host.writeFile('/etc/cni/net.d/87-podman-bridge.conflist', PODMAN_CONFLIST);
    const r = await cli(['plan', '--node', 'node-1'], host);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('cni-sweep: preflight: kept (this run removes no CNI): /etc/cni/net.d/87-podman-bridge.conflist\n');
    expect(r.stdout).toContain('\n# kept (this run removes no CNI): /etc/cni/net.d/87-podman-bridge.conflist\n');
    expect(r.stdout + r.stderr).not.toContain('not owned by )');
  });

  it('with a CNI to remove, it names the CNI', async () => {
    const host = dirtyFlannelNode({ podman: true }).host;
    const r = await cli(['plan', '--node', 'node-1'], host);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('\n# kept (not owned by flannel): /etc/cni/net.d/87-podman-bridge.conflist\n');
  });
});

describe('help, version and profiles', () => {
  it('--help lists the phases in order', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    const listed = r.stdout
      .split(/Phases, in order[^\n]*:\n/)[1]!
      .split('\n')
      .filter((l) => /^ {2}\S/.test(l))
      .map((l) => l.trim().split(/\s+/)[0]);
    expect(listed).toEqual(PHASE_NAMES);
    expect(r.stdout).toContain('Exit codes: 0 success, 1 a phase failed, 2 bad usage or input, 3 refused.');
  });

  it('--version prints the version', async () => {
    expect(await cli(['--version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('a bare cni-sweep, and cni-sweep help, print the help on stdout and exit 0', async () => {
    const full = await cli(['--help']);
    for (const argv of [[], ['help']]) {
      const r = await cli(argv);
      expect(r, argv.join(' ')).toMatchObject({ code: 0, stderr: '', stdout: full.stdout });
    }
    expect(full.stdout).toMatch(/^Usage: cni-sweep \[options\] \[command\]\n/);
    const run = await cli(['help', 'run']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage: cni-sweep run \[options\]\n/);
  });

  it('the version command prints the version, and with --json the report schema version too', async () => {
    expect(await cli(['version'])).toMatchObject({ code: 0, stdout: `cni-sweep ${VERSION}\n`, stderr: '' });
    const r = await cli(['version', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ version: VERSION, reportSchemaVersion: 1, node: process.version });
  });

  it('every command that prints data takes --json, --verbose and --no-color, version too', async () => {
    for (const cmd of ['plan', 'run', 'doctor', 'restore', 'backups', 'profiles', 'version']) {
      const help = (await cli([cmd, '--help'])).stdout;
      for (const flag of ['--json', '--verbose', '--no-color'])
        expect(help, `${cmd} ${flag}`).toMatch(new RegExp(`^ {2}(-\\w, )?${flag}\\b`, 'm'));
    }
    expect(await cli(['version', '--no-color', '--verbose'])).toMatchObject({ code: 0, stdout: `cni-sweep ${VERSION}\n`, stderr: '' });
    const json = await cli(['version', '--json', '--no-color']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ version: VERSION, reportSchemaVersion: 1, node: process.version });
  });

  it('run --help and plan --help list their exit codes', async () => {
    const run = await cli(['run', '--help']);
    expect(run.code).toBe(0);
    const codes = run.stdout.split('\nExit codes:\n')[1]!;
    expect(
      codes
        .split('\n')
        .filter((l) => /^ {2}\d/.test(l))
        .map((l) => l.trim().split(/\s{2,}/)[0]),
    ).toEqual(['0', '1', '2', '3', '129, 130, 141, 143']);
    for (const l of codes.split('\n')) expect(l.length, l).toBeLessThanOrEqual(80);
    const plan = await cli(['plan', '--help']);
    expect(plan.stdout).toContain('Exit codes: 0 the plan is printed (--json: wouldChange');
  });

  it('completion bash|zsh|fish and the man page come from the program --help is made from', async () => {
    const bash = await cli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    // bash completes a command, then that command's options, as --help lists them.
    const complete = (line: string) =>
      execFileSync(
        'bash',
        ['-c', `${bash.stdout}\nCOMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _cni_sweep; printf '%s\\n' "\${COMPREPLY[@]}"`],
        { encoding: 'utf8' },
      ).trim();
    expect(complete('cni-sweep re')).toBe('restore');
    expect(complete('cni-sweep run --no-')).toBe('--no-color\n--no-restart-on-failure');
    expect(complete('cni-sweep completion z')).toBe('zsh');
    const help = (await cli(['run', '--help'])).stdout;
    for (const f of complete("cni-sweep run ''").split('\n')) expect(help).toContain(f);
    expect((await cli(['completion', 'zsh'])).stdout).toMatch(
      /^#compdef cni-sweep\n[^]*bashcompinit[^]*complete -o default -F _cni_sweep cni-sweep\n$/,
    );
    const fish = (await cli(['completion', 'fish'])).stdout;
    expect(fish).toContain('complete -c cni-sweep -n __fish_use_subcommand -a doctor -d ');
    expect(fish).toContain("complete -c cni-sweep -n '__fish_seen_subcommand_from backups' -l keep -r -d ");
    const bad = await cli(['completion', 'bsh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('cni-sweep: error: unknown shell "bsh" (did you mean bash?)\n  hint: shells: bash, zsh, fish\n');

    const man = (await cli(['man'])).stdout;
    expect(man).toMatch(/^\.TH CNI-SWEEP 1 /);
    expect(man).toContain('\n.SH RUN\n.B cni\\-sweep run\n');
    expect(man).toContain('\n.B \\-\\-no\\-restart\\-on\\-failure\n');
    expect(man).toContain('\n.B cni\\-sweep restore \\fIbackup\\fR\n');
    // The exit codes of run --help are in the page too.
    expect(man).toContain('129, 130, 141, 143');
    // A hidden command is not in the help.
    expect((await cli(['--help'])).stdout).not.toMatch(/^ {2}man\b/m);
  });

  it('profiles lists flannel with what it owns', async () => {
    const r = await cli(['profiles']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('flannel: Flannel (vxlan, host-gw, wireguard, udp, ipip backends) with the bridge and portmap plugins');
    expect(lines).toContain('  config:     files whose plugin types include flannel');
    expect(lines.find((l) => l.startsWith('  interfaces:'))).toBe(
      '  interfaces: cni0, flannel.1, flannel-v6.1, flannel-wg, flannel-wg-v6, flannel0, flannel.ipip, flannel.<n>, flannel-v6.<n>, veths attached to its bridge',
    );
    const block = (cni: string) => {
      const from = lines.findIndex((l) => l.startsWith(`${cni}: `));
      return lines.slice(
        from,
        lines.findIndex((l, k) => k > from && !l.startsWith('  ')),
      );
    };
    const [calico, canal] = [block('calico'), block('canal')];
    expect(calico).toContain('  config:     files whose plugin types include calico with IPAM calico-ipam; calico-kubeconfig');
    expect(canal).toContain('  config:     files whose plugin types include calico with IPAM host-local; calico-kubeconfig');
    expect(calico.find((l) => l.startsWith('  interfaces:'))).toBe(
      "  interfaces: vxlan.calico, vxlan-v6.calico, wireguard.cali, wg-v6.cali, cali<11 hex>; tunl0 (the kernel's, made with its module: addresses flushed and set down, not deleted)",
    );
    expect(calico.find((l) => l.startsWith('  firewall:'))).toMatch(/; comments "cali:\.\.\."; /);
    expect(lines.find((l) => l.startsWith('  nftables:'))).toBe('  nftables:   ip flannel-ipv4, ip6 flannel-ipv6');
    expect(lines).toContain('  live while: flanneld runs in this network namespace');
    expect(lines).toContain(
      '  live while: calico-node, calico-felix, bird (command line matching /(etc|run|var/run)/calico/), bird6 (command line matching /(etc|run|var/run)/calico/), confd (command line matching /(etc|run|var/run)/calico/) runs in this network namespace',
    );
    const json = JSON.parse((await cli(['profiles', '--json'])).stdout);
    expect(json.map((p: { name: string }) => p.name)).toEqual(loadProfiles().map((p) => p.name));
    expect(json.find((p: { name: string }) => p.name === 'flannel').interfaces.names).toContain('flannel.1');
  });
});

describe('restore', () => {
  /** Copies a backup the fake node wrote to a real directory (restore reads it with node:fs) and into the fake at that path. */
  function materialize(host: FakeHost, backup: string, base = tmp, name?: string): string {
    const dir = name ? path.join(base, name) : fs.mkdtempSync(path.join(base, 'backup-'));
    fs.mkdirSync(dir, { recursive: true });
    for (const p of host.paths()) {
      if (!p.startsWith(`${backup}/`) || p.endsWith('/')) continue;
      const rel = p.slice(backup.length + 1);
      const content = host.fileAt(p)!;
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), content);
      host.writeFile(path.join(dir, rel), content, 0o600);
    }
    return dir;
  }

  it("refuses another node's backup (exit 3, nothing written) unless --node says this is that node", async () => {
    const { host } = dirtyFlannelNode();
    const run = await cli(['run', '--node', 'node-7', '--kubeconfig', '/etc/kubernetes/admin.conf', '--yes', '--json'], host);
    expect(run.code).toBe(0);
    const dir = materialize(host, JSON.parse(run.stdout).backup);
    const r = await cli(['restore', dir], host);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `cni-sweep: error: restore: ${dir} is node node-7's backup, and this is node node-1: its IPAM allocations, subnet and rules are not this node's\n  hint: pass --node node-7 if this is that node (renamed), or restore this node's own backup\n`,
    );
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(false);
    // latest: this node's newest, not the newest in a backup dir shared with other nodes.
    const base = fs.mkdtempSync(path.join(tmp, 'shared-'));
    const mine = dirtyFlannelNode().host;
    const mineRun = await cli([...RUN, '--yes', '--json'], mine);
    materialize(mine, JSON.parse(mineRun.stdout).backup, base, '20000101T000000Z-node-1');
    materialize(host, JSON.parse(run.stdout).backup, base, '20990101T000000Z-node-7');
    const latest = await cli(['restore', 'latest', '--backup-dir', base, '--dry-run'], mine);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toContain(`restore plan for ${path.join(base, '20000101T000000Z-node-1')}\n`);
    const forced = await cli(['restore', dir, '--node', 'node-7'], host);
    expect(forced.code).toBe(0);
    expect(host.exists('/etc/cni/net.d/10-flannel.conflist')).toBe(true);
  });

  it('completes a directory an earlier restore left part way (a full disk, a kill): its missing entries go back, what exists stays', async () => {
    const { host, pods } = dirtyFlannelNode();
    const run = await cli([...RUN, '--yes', '--json'], host);
    expect(run.code).toBe(0);
    const dir = materialize(host, JSON.parse(run.stdout).backup);
    expect((await cli(['restore', dir], host)).code).toBe(0);
    // As a restore that stopped part way leaves it: the directory, one allocation missing, another changed since.
    const [a, b] = pods.map((p) => `/var/lib/cni/networks/cbr0/${p.ip}`);
    await host.apply({ argv: ['rm', '-f', '--', a!] });
    host.writeFile(b!, 'the new CNI wrote this\n');
    const again = await cli(['restore', dir, '--json'], host);
    expect(again.code).toBe(0);
    const out = JSON.parse(again.stdout);
    expect(out.notes).toContain('completes /var/lib/cni/networks/cbr0: 1 saved entry of it is missing; what exists is left as it is');
    expect(out.restored.paths).toBe(1);
    expect(host.exists(a!)).toBe(true);
    expect(await host.readFile(b!)).toBe('the new CNI wrote this\n');
  });

  it('puts back the files, the firewall rules and the nftables tables a run removed', async () => {
    const { host } = dirtyFlannelNode();
    // Rule order matters within a chain; the order chains are listed in does not.
    const byChain = (backend: string, table: string) => {
      const out: Record<string, string[]> = {};
      for (const c of host.chains(backend, table)) out[c] = host.rules(backend, table).filter((r) => r.startsWith(`-A ${c} `));
      return out;
    };
    const before = {
      v4: byChain('iptables-nft', 'nat'),
      f4: byChain('iptables-nft', 'filter'),
      v6: byChain('ip6tables-nft', 'nat'),
      nft: [...host.nftTables],
      conf: await host.readFile('/etc/cni/net.d/10-flannel.conflist'),
    };
    const run = await cli([...RUN, '--yes', '--json'], host);
    expect(run.code).toBe(0);
    const dir = materialize(host, JSON.parse(run.stdout).backup);

    const plan = await cli(['restore', dir, '--dry-run'], host);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(`tar -C / -xpf ${dir}/files.tar --skip-old-files`);

    const r = await cli(['restore', dir], host);
    expect(r.code).toBe(0);
    expect(await host.readFile('/etc/cni/net.d/10-flannel.conflist')).toBe(before.conf);
    expect(host.exists('/run/flannel/subnet.env')).toBe(true);
    expect(byChain('iptables-nft', 'nat')).toEqual(before.v4);
    expect(byChain('iptables-nft', 'filter')).toEqual(before.f4);
    expect(byChain('ip6tables-nft', 'nat')).toEqual(before.v6);
    expect(host.nftTables.map((t) => `${t.family} ${t.name}`).sort()).toEqual(before.nft.map((t) => `${t.family} ${t.name}`).sort());

    // It says what it put back.
    expect(r.stdout).toBe(`cni-sweep: restore from ${dir}: restored 6 paths, 36 firewall rules, 2 nftables tables\n`);

    // Everything is back: a second restore has nothing to do, duplicates nothing, and says so.
    const again = await cli(['restore', dir, '--json'], host);
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout);
    expect(second.steps).toEqual([]);
    expect(second).toMatchObject({ changed: false, restored: { paths: 0, firewallRules: 0, nftablesTables: 0 } });
    expect(second.notes).toContain('6 of the 6 saved paths exist: left as they are');
    expect((await cli(['restore', dir], host)).stdout).toBe(
      `cni-sweep: restore from ${dir}: nothing to restore: everything in the backup is present\n`,
    );
    expect(byChain('iptables-nft', 'nat')).toEqual(before.v4);
  });

  it('restore NAME and restore latest find the backup under the backup dir; a path taken again puts back only what is gone', async () => {
    const { host } = dirtyFlannelNode();
    const run = await cli([...RUN, '--yes', '--json'], host);
    const base = fs.mkdtempSync(path.join(tmp, 'backups-'));
    const dir = materialize(host, JSON.parse(run.stdout).backup, base);
    const name = path.basename(dir);
    fs.mkdirSync(path.join(base, 'backup-~unreadable')); // newest by name, and no backup: latest passes it by
    // Links are no backups: one to a backup elsewhere (newest by name) is passed by, one that dangles too.
    fs.symlinkSync(dir, path.join(base, 'zz-elsewhere'));
    fs.symlinkSync('/nonexistent-cni-sweep', path.join(base, 'zzz-dangling'));
    const list = await cli(['backups', '--backup-dir', base], host);
    expect(list.code).toBe(0);
    expect(list.stdout).not.toContain('zz');
    expect(list.stdout.split('\n')[0]).toMatch(/^CREATED +NODE +CNI +SIZE +NAME$/);
    expect(list.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+ +node-1 +flannel +\\d+\\.\\d KiB +${name}$`, 'm'));

    const byName = await cli(['restore', name, '--backup-dir', base, '--dry-run'], host);
    expect(byName.code).toBe(0);
    expect(byName.stdout).toContain(`# cni-sweep ${VERSION} restore plan for ${dir}\n`);
    expect(byName.stdout).toContain('# would restore: 6 paths, 36 firewall rules, 2 nftables tables\n');
    const typo = await cli(['restore', name.slice(0, -1), '--backup-dir', base], host);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain(`no backup named "${name.slice(0, -1)}" in ${base}`);

    // One path the new CNI wrote again is left as it is; the rest goes back.
    host.writeFile('/run/flannel/subnet.env', 'NEW=1\n', 0o644);
    const latest = await cli(['restore', 'latest', '--backup-dir', base, '--json'], host);
    expect(latest.code).toBe(0);
    const report = JSON.parse(latest.stdout);
    expect(report.backup).toBe(dir);
    expect(report.restored).toEqual({ paths: 5, firewallRules: 36, nftablesTables: 2, ipsets: 0 });
    expect(report.notes).toContain('1 of the 6 saved paths exist: left as they are');
    expect(await host.readFile('/run/flannel/subnet.env')).toBe('NEW=1\n');
  });

  it('recreates the ipsets the run destroyed before the rules that match them, and leaves a set that exists again alone', async () => {
    const host = foreignNode();
    host.setIptables('iptables-nft', fs.readFileSync(path.join(__dirname, '../../fixtures/calico/iptables-save.v4.txt'), 'utf8'));
    host.ipsets.push('cali40masq-ipam-pools', 'cali40all-ipam-pools', 'cali40all-hosts-net', 'site-allow');
    host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    const rules = host.iptablesSave('iptables-nft');
    expect(rules).toContain('--match-set cali40masq-ipam-pools');
    const run = await cli([...RUN, '--cni', 'calico', '--yes', '--json'], host);
    expect(run.code).toBe(0);
    expect(host.ipsets).toEqual(['site-allow']);
    const dir = materialize(host, JSON.parse(run.stdout).backup);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).ipsets).toEqual([
      { name: 'cali40masq-ipam-pools', file: 'firewall/ipset-cali40masq-ipam-pools.save' },
      { name: 'cali40all-ipam-pools', file: 'firewall/ipset-cali40all-ipam-pools.save' },
      { name: 'cali40all-hosts-net', file: 'firewall/ipset-cali40all-hosts-net.save' },
    ]);
    // Calico's agent made one again: restore must not try to create it a second time.
    host.ipsets.push('cali40all-ipam-pools');

    const plan = await cli(['restore', dir, '--dry-run'], host);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^# would restore: \d+ paths?, \d+ firewall rules, 2 ipsets$/m);
    expect(plan.stdout).toContain('# ipset cali40all-ipam-pools exists: left as it is\n');
    const lines = plan.stdout.split('\n');
    const setLine = lines.indexOf(`ipset restore -file ${dir}/firewall/ipset-cali40masq-ipam-pools.save`);
    expect(setLine).toBeGreaterThan(0);
    expect(setLine).toBeLessThan(lines.findIndex((l) => l.startsWith('iptables-nft-restore --noflush -w')));
    expect(plan.stdout).not.toContain('ipset-cali40all-ipam-pools.save');

    const r = await cli(['restore', dir, '--json'], host);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).restored).toMatchObject({ ipsets: 2 });
    expect([...host.ipsets].sort()).toEqual(['cali40all-hosts-net', 'cali40all-ipam-pools', 'cali40masq-ipam-pools', 'site-allow']);
    expect(host.iptablesSave('iptables-nft')).toContain('--match-set cali40masq-ipam-pools');
  });

  it('reads a version 1 manifest (no member list): the members are checked against its paths, and the plan says so', async () => {
    const { host } = dirtyFlannelNode();
    const run = await cli([...RUN, '--yes', '--json'], host);
    const dir = materialize(host, JSON.parse(run.stdout).backup);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.version).toBe(2);
    expect(manifest.members.map((m: { name: string }) => m.name)).toContain('etc/cni/net.d/10-flannel.conflist');
    delete manifest.members;
    const old = JSON.stringify({ ...manifest, version: 1 }, null, 2) + '\n';
    fs.writeFileSync(path.join(dir, 'manifest.json'), old);
    const sums = execFileSync(
      'sha256sum',
      [
        '--',
        ...fs
          .readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.slice(66)),
      ],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    fs.writeFileSync(path.join(dir, 'SHA256SUMS'), sums);
    host.writeFile(path.join(dir, 'manifest.json'), old, 0o600);
    const r = await cli(['restore', dir, '--dry-run'], host);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      '# the manifest (version 1) does not list the members of files.tar: they were checked against the paths it removed only',
    );
    expect(r.stdout).toContain(`tar -C / -xpf ${dir}/files.tar --skip-old-files`);
  });

  it('refuses a backup whose files do not match their checksums', async () => {
    const { host } = dirtyFlannelNode();
    const run = await cli([...RUN, '--yes', '--json'], host);
    const dir = materialize(host, JSON.parse(run.stdout).backup);
    fs.appendFileSync(path.join(dir, 'manifest.json'), ' ');
    const r = await cli(['restore', dir], host);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cni-sweep: error: backup .*: checksum mismatch for manifest\.json: the backup is corrupt or was changed\n/);
  });
});
