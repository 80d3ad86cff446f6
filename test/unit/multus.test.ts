// Multus in front of a pod network, on the fake host: what its config hands pods to (an embedded
// delegate, clusterNetwork by name or path), the Multus config going with the CNI it delegates to
// and staying with one that stays, the runtime's CNI seen through Multus, --cni multus and
// --cni whereabouts, and doctor's findings for a Multus config that outlived what it needs.
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import type { DoctorJson } from '../../src/doctor/render.js';
import { RefusedError } from '../../src/errors.js';
import type { FakeHost } from '../../src/host/fake.js';
import { Gaps, readCniConfigs } from '../../src/inspect.js';
import { parseCniConfig } from '../../src/parse/conflist.js';
import { cniConfig } from '../../src/phases/cni-config.js';
import { cniState } from '../../src/phases/cni-state.js';
import { firewall } from '../../src/phases/firewall.js';
import type { PlannedStep } from '../../src/phases/types.js';
import { detect } from '../../src/profiles/detect.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { chooseTargets } from '../../src/profiles/targets.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { FLANNEL_CONFLIST, PODMAN_CONFLIST } from '../helpers/flannel-node.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';
import { Capture, ctxFor, isolateKubeconfigEnv } from './helpers.js';

isolateKubeconfigEnv();

const profiles = loadProfiles();
const byName = (n: string) => profiles.find((p) => p.name === n)!;
const KUBECONFIG = '/etc/cni/net.d/multus.d/multus.kubeconfig';

/** 00-multus.conf as multus-cni's thin_entrypoint writes it (multusConfTemplate), embedding `master`. */
const thinConf = (master: string) =>
  JSON.stringify(
    {
      cniVersion: '0.3.1',
      name: 'multus-cni-network',
      type: 'multus',
      capabilities: { portMappings: true },
      logToStderr: true,
      kubeconfig: KUBECONFIG,
      delegates: [JSON.parse(master)],
    },
    null,
    2,
  );
/** 00-multus.conflist (CNI 1.0.0: multusConflistTemplate). */
const thinConflist = (master: string) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'multus-cni-network',
    plugins: [{ type: 'multus', logToStderr: true, kubeconfig: KUBECONFIG, delegates: [JSON.parse(master)] }],
  });
/** 00-multus.conf as multus-daemon writes it (MultusConf.Generate): clusterNetwork, no delegates. */
const thickConf = (clusterNetwork: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: '0.3.1', name: 'multus-cni-network', type: 'multus-shim', clusterNetwork, logToStderr: true, ...extra });

const bare = (steps: PlannedStep[]) => steps.map((s) => s.argv);

/** A node with Calico's config and state, Flannel's leftovers, podman's config and Multus in front. */
function calicoNode(multus: string, file = '00-multus.conf'): FakeHost {
  return dirtyFlannelNode({ podman: true })
    .host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST)
    .writeFile('/etc/cni/net.d/calico-kubeconfig', 'apiVersion: v1\n', 0o600)
    .writeFile('/var/lib/calico/nodename', 'node-1')
    .writeFile(`/etc/cni/net.d/${file}`, multus)
    .writeFile(KUBECONFIG, 'apiVersion: v1\n', 0o600)
    .writeFile('/var/lib/cni/multus/results/x', '{}')
    .writeFile('/etc/cni/net.d/whereabouts.d/whereabouts.conf', '{}')
    .writeFile('/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig', 'apiVersion: v1\n');
}

describe('reading a Multus config', () => {
  it('thin: the first embedded delegate (a conflist) and the kubeconfig; thick: clusterNetwork and the default daemon socket', () => {
    const thin = parseCniConfig('/etc/cni/net.d/00-multus.conf', thinConf(CALICO_CONFLIST));
    expect(thin.types).toEqual(['multus']);
    expect(thin.multus).toMatchObject({ kind: 'thin', kubeconfig: KUBECONFIG, confDir: '/etc/cni/multus/net.d' });
    expect(thin.multus?.delegate).toMatchObject({ name: 'k8s-pod-network', types: ['calico', 'portmap', 'bandwidth'] });
    // The .conflist form, whose embedded delegate is a single-plugin config despite the file's name.
    const single = '{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"isDefaultGateway":true}}';
    const list = parseCniConfig('/etc/cni/net.d/00-multus.conflist', thinConflist(single));
    expect(list.multus?.delegate).toMatchObject({ name: 'cbr0', types: ['flannel'], bridges: ['cni0'] });

    const thick = parseCniConfig('/etc/cni/net.d/00-multus.conf', thickConf('/host/etc/cni/net.d/10-calico.conflist'));
    expect(thick.types).toEqual(['multus-shim']);
    expect(thick.multus).toEqual({
      kind: 'thick',
      clusterNetwork: '/host/etc/cni/net.d/10-calico.conflist',
      confDir: '/etc/cni/multus/net.d',
      socket: '/run/multus/multus.sock',
    });
    expect(parseCniConfig('/x.conf', thickConf('k8s-pod-network', { daemonSocketDir: '/var/run/multus-x/' })).multus?.socket).toBe(
      '/var/run/multus-x/multus.sock',
    );
  });

  it('resolves clusterNetwork by path (the thick daemon writes its /host mount of the conf dir), by name (Multus confDir first, then the conf dir), and leaves an unknown name unresolved', async () => {
    const host = foreignNode()
      .writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST)
      .writeFile('/etc/cni/net.d/00-multus.conf', thickConf('/host/etc/cni/net.d/10-calico.conflist'));
    const [m] = await readCniConfigs(host);
    expect(m!.multus?.delegate?.file).toBe('/etc/cni/net.d/10-calico.conflist');

    host.writeFile('/etc/cni/net.d/00-multus.conf', thickConf('k8s-pod-network'));
    expect((await readCniConfigs(host))[0]!.multus?.delegate?.file).toBe('/etc/cni/net.d/10-calico.conflist');

    host.writeFile('/etc/cni/multus/net.d/k8s.conf', FLANNEL_CONFLIST.replace('"cbr0"', '"k8s-pod-network"'));
    expect((await readCniConfigs(host))[0]!.multus?.delegate?.file).toBe('/etc/cni/multus/net.d/k8s.conf');

    host.writeFile('/etc/cni/net.d/00-multus.conf', thickConf('default/some-nad'));
    expect((await readCniConfigs(host))[0]!.multus).toMatchObject({ delegateError: 'default/some-nad: no such file' });
    host.writeFile('/etc/cni/net.d/00-multus.conf', thickConf('ovn-kubernetes'));
    expect((await readCniConfigs(host))[0]!.multus?.delegateError).toBe(
      'clusterNetwork "ovn-kubernetes" names no config file on this node (it may name a NetworkAttachmentDefinition, which cni-sweep cannot read)',
    );
  });
});

describe('the runtime looks through Multus to its delegate', () => {
  it('00-multus.conf delegating to Flannel: Flannel is the CNI in use and kept; the Calico leftovers beside it are removed', async () => {
    const host = calicoNode(thinConf(FLANNEL_CONFLIST));
    const targets = await chooseTargets(host, { detected: await detect(host, profiles, new Gaps()) });
    expect(targets).toEqual([
      {
        cni: 'flannel',
        action: 'keep',
        why: "the runtime uses its config /etc/cni/net.d/00-multus.conf (Multus's, the first in lexical order, delegating to it: its first delegate, embedded in it): pods get their network from it",
      },
      { cni: 'calico', action: 'remove', why: 'leftovers: no agent of it runs and the runtime does not use its config' },
      {
        cni: 'multus',
        action: 'keep',
        why: 'the runtime uses its config /etc/cni/net.d/00-multus.conf (the first in lexical order): pods get their network from it',
      },
    ]);
  });

  it('Multus adds every delegate to every pod: Flannel as its second delegate is in use and kept; --cni flannel refuses', async () => {
    const multus = JSON.parse(thinConf(CALICO_CONFLIST));
    multus.delegates.push(JSON.parse(FLANNEL_CONFLIST));
    const host = calicoNode(JSON.stringify(multus)).addProcess(['calico-node', '-felix'], { pid: 71 });
    const targets = await chooseTargets(host, { detected: await detect(host, profiles, new Gaps()) });
    expect(targets.find((t) => t.cni === 'flannel')).toEqual({
      cni: 'flannel',
      action: 'keep',
      why: "the runtime uses its config /etc/cni/net.d/00-multus.conf (Multus's, the first in lexical order, which adds it to every pod too: its delegate 2): pods get their network from it",
    });
    const err = await chooseTargets(host, { named: [byName('flannel')] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as RefusedError).message).toBe(
      "--cni flannel: /etc/cni/net.d/00-multus.conf (Multus's) adds flannel's network to every pod (its delegate 2), and it stays: removing flannel would make every new pod fail in Multus and take that interface from the pods that have it",
    );
    // With the first delegate's CNI named too, the Multus config goes with it: nothing stays to break.
    const quiet = calicoNode(JSON.stringify(multus));
    expect((await chooseTargets(quiet, { named: [byName('calico'), byName('flannel')] })).map((t) => t.action)).toEqual([
      'remove',
      'remove',
    ]);
  });

  it("portmap's shared chains stay when a Multus delegate that stays uses portmap, or when a rule in them names a network that stays", async () => {
    const withPortmap = JSON.parse(CALICO_CONFLIST);
    expect(withPortmap.plugins.map((p: { type: string }) => p.type)).toContain('portmap');
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/00-multus.conf', thinConf(JSON.stringify(withPortmap)));
    const hostport = (h: FakeHost) => ctxFor(h, { profiles: [byName('flannel')] }).then((c) => firewall.plan(c));
    const stdin = async (h: FakeHost) => (await hostport(h)).steps.map((st) => st.stdin ?? '').join('');
    expect(await stdin(host)).not.toMatch(/-[FX] CNI-HOSTPORT-DNAT/);
    // No config left uses portmap, but a live pod of another network has its rule there.
    const bare2 = dirtyFlannelNode().host;
    const before = await stdin(bare2);
    expect(before).toMatch(/-F CNI-HOSTPORT-DNAT/); // Flannel's alone: they go whole
    const save = bare2
      .iptablesSave('iptables-nft')
      .replace(
        /^(-A CNI-HOSTPORT-DNAT .*)$/m,
        '$1\n-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"k8s-pod-network\\" id: \\"' +
          'c'.repeat(64) +
          '\\"" -m multiport --dports 30443 -j CNI-DN-0123456789abcdef01234',
      );
    bare2.setIptables('iptables-nft', save);
    expect(await stdin(bare2)).not.toMatch(/-[FX] CNI-HOSTPORT-DNAT/);
  });

  it('--cni multus refuses while multus-daemon or thin_entrypoint runs', async () => {
    for (const name of ['multus-daemon', 'thin_entrypoint']) {
      const host = calicoNode(thinConf(CALICO_CONFLIST)).addProcess([`/usr/src/multus-cni/bin/${name}`], { pid: 77 });
      const err = await chooseTargets(host, { named: [byName('multus')] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RefusedError);
      expect(err).toMatchObject({
        message: `--cni multus: multus is live on this node: its agent runs: ${name} (pid 77); cni-sweep never removes a live CNI`,
        hint: 'stop it for good first, by deleting its DaemonSet (kubectl -n kube-system delete daemonset kube-multus-ds), wait for its pods to go, then run again',
      });
    }
  });
});

describe('a Multus config goes with the CNI it delegates to', () => {
  const EMBEDDED = 'its first delegate, embedded in it';
  const cases: Array<[string, string, string, string]> = [
    ['thin, embedded conf', thinConf(CALICO_CONFLIST), EMBEDDED, '00-multus.conf'],
    ['thin, 00-multus.conflist', thinConflist(CALICO_CONFLIST), EMBEDDED, '00-multus.conflist'],
    [
      'thick, clusterNetwork by its /host path',
      thickConf('/host/etc/cni/net.d/10-calico.conflist'),
      'its clusterNetwork /host/etc/cni/net.d/10-calico.conflist (/etc/cni/net.d/10-calico.conflist)',
      '00-multus.conf',
    ],
    [
      'thick, clusterNetwork by the node path',
      thickConf('/etc/cni/net.d/10-calico.conflist'),
      'its clusterNetwork /etc/cni/net.d/10-calico.conflist',
      '00-multus.conf',
    ],
    [
      'clusterNetwork by name',
      thickConf('k8s-pod-network'),
      'its clusterNetwork k8s-pod-network (/etc/cni/net.d/10-calico.conflist)',
      '00-multus.conf',
    ],
  ];
  for (const [what, text, via, file] of cases) {
    it(`${what}: --cni calico removes ${file} with Calico's config and says why`, async () => {
      const host = calicoNode(text, file);
      const plan = await cniConfig.plan(await ctxFor(host, { profiles: [byName('calico')] }));
      expect(bare(plan.steps)).toEqual([
        ['rm', '-f', '--', '/etc/cni/net.d/10-calico.conflist', '/etc/cni/net.d/calico-kubeconfig', `/etc/cni/net.d/${file}`],
      ]);
      expect(plan.steps[0]!.backup?.files).toContain(`/etc/cni/net.d/${file}`);
      expect(plan.notes).toEqual([
        `removes /etc/cni/net.d/${file}: it delegates to calico (${via}), which this run removes; left behind, the runtime still loads it first and every new pod fails in Multus`,
      ]);
      // What stays: Flannel's config is the runtime's next one, podman's is untouched.
      for (const s of plan.steps) await host.apply(s);
      expect((await readCniConfigs(host)).map((c) => c.file)).toEqual([
        '/etc/cni/net.d/10-flannel.conflist',
        '/etc/cni/net.d/87-podman-bridge.conflist',
      ]);
      expect(await host.readFile('/etc/cni/net.d/87-podman-bridge.conflist')).toBe(PODMAN_CONFLIST);
      expect(await host.entryType(KUBECONFIG)).toBe('file');
    });
  }

  it('a kept delegate keeps it: --cni calico with Multus in front of Flannel, or of a NetworkAttachmentDefinition, leaves 00-multus.conf', async () => {
    for (const text of [thinConf(FLANNEL_CONFLIST), thickConf('/host/etc/cni/net.d/10-flannel.conflist'), thickConf('ovn-kubernetes')]) {
      const host = calicoNode(text);
      const plan = await cniConfig.plan(await ctxFor(host, { profiles: [byName('calico')] }));
      expect(bare(plan.steps)).toEqual([['rm', '-f', '--', '/etc/cni/net.d/10-calico.conflist', '/etc/cni/net.d/calico-kubeconfig']]);
      expect(plan.notes).toEqual([]);
    }
  });
});

describe('--cni multus and --cni whereabouts', () => {
  it('multus: any Multus config, multus.d/, /var/lib/cni/multus, /run/multus and its result caches; Calico, whereabouts.d/ and podman stay', async () => {
    const host = calicoNode(thinConf(CALICO_CONFLIST))
      .writeFile('/etc/cni/net.d/05-other-multus.conf', thickConf('k8s-pod-network'))
      .writeFile('/run/multus/multus.sock', '')
      .writeFile(`/var/lib/cni/results/multus-cni-network-${'a'.repeat(64)}-eth0`, '{}');
    const ctx = await ctxFor(host, { profiles: [byName('multus')] });
    const config = await cniConfig.plan(ctx);
    const state = await cniState.plan(ctx);
    expect([...bare(config.steps), ...bare(state.steps)]).toEqual([
      ['rm', '-f', '--', '/etc/cni/net.d/00-multus.conf', '/etc/cni/net.d/05-other-multus.conf'],
      ['rm', '-rf', '--', '/etc/cni/net.d/multus.d'],
      ['rm', '-rf', '--', '/var/lib/cni/multus', '/run/multus', `/var/lib/cni/results/multus-cni-network-${'a'.repeat(64)}-eth0`],
    ]);
    for (const s of [...config.steps, ...state.steps]) await host.apply(s);
    expect((await readCniConfigs(host)).map((c) => c.file)).toEqual([
      '/etc/cni/net.d/10-calico.conflist',
      '/etc/cni/net.d/10-flannel.conflist',
      '/etc/cni/net.d/87-podman-bridge.conflist',
    ]);
    for (const gone of ['/etc/cni/net.d/multus.d', '/var/lib/cni/multus', '/run/multus'])
      expect(await host.entryType(gone), gone).toBeNull();
    expect(await host.entryType('/etc/cni/net.d/whereabouts.d/whereabouts.conf')).toBe('file');
  });

  it('whereabouts: whereabouts.d/ only, whoever uses its IPAM', async () => {
    const host = calicoNode(thinConf(CALICO_CONFLIST)).writeFile(
      '/etc/cni/net.d/20-macvlan.conf',
      '{"cniVersion":"0.3.1","name":"mv","type":"macvlan","ipam":{"type":"whereabouts","range":"192.168.2.0/24"}}',
    );
    const ctx = await ctxFor(host, { profiles: [byName('whereabouts')] });
    expect(bare((await cniConfig.plan(ctx)).steps)).toEqual([['rm', '-rf', '--', '/etc/cni/net.d/whereabouts.d']]);
    expect((await cniState.plan(ctx)).steps).toEqual([]);
  });
});

type Finding = DoctorJson['findings'][number];
async function doctor(host: FakeHost): Promise<{ code: number; findings: Finding[]; cniInUse: string[] }> {
  const out = new Capture();
  const code = await main(['doctor', '--node', 'node-1', '--json'], {
    stdout: out.stream,
    stderr: new Capture().stream,
    stdinIsTty: false,
    stderrIsTty: false,
    env: {},
    makeHost: () => host,
  });
  expect(host.calls).toEqual([]);
  const report = JSON.parse(out.text) as DoctorJson;
  return { code, findings: report.findings.filter((f) => f.id.startsWith('multus-')), cniInUse: report.cniInUse };
}
const installBins = (host: FakeHost, bins: string[]) => {
  for (const b of bins) host.writeFile(`/opt/cni/bin/${b}`, '\x7fELF', 0o755);
};

describe('doctor', () => {
  it('a healthy Multus in front of Flannel has no Multus finding', async () => {
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/00-multus.conf', thinConf(FLANNEL_CONFLIST)).writeFile(KUBECONFIG, 'apiVersion: v1\n');
    installBins(host, ['multus', 'flannel', 'bridge', 'host-local', 'portmap']);
    host.addProcess(['/thin_entrypoint', '--multus-conf-file=auto']);
    // Calico's config beside it is not what the runtime uses: Multus hands pods to Flannel.
    host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    const r = await doctor(host);
    expect(r.findings).toEqual([]);
    expect(r.cniInUse).toEqual(['multus', 'flannel']);
  });

  it('Calico removed from behind Multus: its delegate is not installed, and the fix removes Calico with the Multus config', async () => {
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/00-multus.conf', thinConf(CALICO_CONFLIST)).writeFile(KUBECONFIG, 'apiVersion: v1\n');
    installBins(host, ['multus', 'flannel', 'bridge', 'host-local', 'portmap']);
    const r = await doctor(host);
    expect(r.code).toBe(1);
    expect(r.findings).toEqual([
      {
        id: 'multus-delegate-missing',
        severity: 'error',
        title:
          '/etc/cni/net.d/00-multus.conf hands pods to a CNI that is not installed: calico (calico, bandwidth missing from /opt/cni/bin)',
        evidence: [
          '/etc/cni/net.d/00-multus.conf: multus config; the runtime loads it first',
          'delegate: network k8s-pod-network, plugins calico, portmap, bandwidth (its first delegate, embedded in it)',
          '/opt/cni/bin/calico: missing',
          '/opt/cni/bin/bandwidth: missing',
          'no Multus process runs (thin_entrypoint, multus-daemon)',
        ],
        why:
          'New pods fail in Multus before any network is set up (FailedCreatePodSandBox): `plugin type="multus" name="multus-cni-network" failed (add): Multus: [...]: error waiting for pod: Unauthorized`, ' +
          'or with the thick plugin `plugin type="multus-shim" ... CmdAdd (shim): failed to send CNI request: ... dial unix /run/multus/multus.sock: connect: connection refused`, which also blocks KillPodSandbox of old pods. ' +
          'Here the cluster network Multus delegates to is gone (`failed to find plugin "calico" in path [/opt/cni/bin]`, or `error loading CNI conflist file`): ' +
          'its CNI was removed and the Multus config that embeds or names it outlived it. Removing that CNI with cni-sweep removes this Multus config with it; reinstalling the CNI brings the delegate back.',
        // One whole run removes Calico (the Multus config with it) and the departed Flannel of the other findings.
        fix: 'cni-sweep run --cni calico,flannel',
        fixArgv: ['cni-sweep', 'run', '--cni', 'calico,flannel'],
      },
    ]);
  });

  it('a clusterNetwork file that is gone, a kubeconfig that is gone, and a thick socket nothing serves', async () => {
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/00-multus.conf', thickConf('/host/etc/cni/net.d/10-calico.conflist', { kubeconfig: KUBECONFIG }));
    host.writeFile('/run/multus/multus.sock', '');
    installBins(host, ['multus-shim', 'flannel', 'bridge', 'host-local', 'portmap']);
    const r = await doctor(host);
    expect(r.findings.map((f) => [f.id, f.title, f.fix])).toEqual([
      [
        'multus-delegate-missing',
        '/etc/cni/net.d/00-multus.conf hands pods to a CNI that is not installed: /host/etc/cni/net.d/10-calico.conflist is gone',
        'cni-sweep run --cni multus',
      ],
      [
        'multus-kubeconfig-missing',
        `/etc/cni/net.d/00-multus.conf names a kubeconfig that is gone: ${KUBECONFIG}`,
        'cni-sweep run --cni multus',
      ],
      [
        'multus-socket-missing',
        "/etc/cni/net.d/00-multus.conf is the thick plugin's, and no multus-daemon serves /run/multus/multus.sock",
        'cni-sweep run --cni multus',
      ],
    ]);
    expect(r.findings[0]!.evidence[1]).toBe(
      'clusterNetwork: /host/etc/cni/net.d/10-calico.conflist: no such file (nor /etc/cni/net.d/10-calico.conflist)',
    );
    expect(r.findings[1]!.why).toContain(
      `\`GetK8sClient: failed to get context for the kubeconfig ${KUBECONFIG}: stat ${KUBECONFIG}: no such file or directory\``,
    );
    expect(r.findings[2]!.why).toContain('`dial unix /run/multus/multus.sock: connect: connection refused`');

    // The daemon runs but its socket is gone: restart it rather than remove a live Multus.
    host.fs.delete(host.realPath('/run/multus/multus.sock'));
    host.addProcess(['/usr/src/multus-cni/bin/multus-daemon'], { pid: 31 });
    const live = (await doctor(host)).findings.find((f) => f.id === 'multus-socket-missing')!;
    expect(live.title).toBe("/etc/cni/net.d/00-multus.conf is the thick plugin's, and its daemon socket /run/multus/multus.sock is gone");
    expect(live.evidence).toEqual([
      '/etc/cni/net.d/00-multus.conf: multus-shim config; the runtime loads it first',
      '/run/multus/multus.sock: no such file',
      'multus-daemon runs: multus-daemon (pid 31)',
    ]);
    expect(live.why).toContain('`dial unix /run/multus/multus.sock: connect: no such file or directory`');
    expect(live.fix).toBe('kubectl -n kube-system rollout restart daemonset kube-multus-ds');
  });
});
