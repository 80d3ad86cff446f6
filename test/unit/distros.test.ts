// Distribution detection and layout on the fake host: units, files, k3s's data dir from its config,
// symlinks resolved inside the root, what a distribution adds to a profile, and k3s's live Flannel.
import { describe, expect, it } from 'vitest';
import { doctor } from '../../src/doctor/index.js';
import { loadDistros } from '../../src/distros/index.js';
import {
  applyDistro,
  crictl,
  detectDistro,
  embeddedLive,
  execStart,
  k3sFlannelLive,
  resolveNodePath,
  yamlScalars,
} from '../../src/distros/node.js';
import { RefusedError } from '../../src/errors.js';
import { detect } from '../../src/profiles/detect.js';
import { chooseTargets } from '../../src/profiles/targets.js';
import { k3s } from '../../src/distros/k3s.js';
import { FakeHost } from '../../src/host/fake.js';
import { Gaps, takeSnapshot } from '../../src/inspect.js';
import { firewallDeletions } from '../../src/ownership.js';
import { parseIptablesSave } from '../../src/parse/iptables.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { runMain } from './helpers.js';

const ALL = loadDistros();
const K3S_CONFLIST = JSON.stringify({
  name: 'cbr0',
  cniVersion: '1.0.0',
  plugins: [{ type: 'flannel', delegate: { hairpinMode: true } }, { type: 'portmap' }, { type: 'bandwidth' }],
});

describe('detection', () => {
  it('a k3s agent by its active unit: k3s conf dir first, one unit for kubelet and runtime, its CRI socket', async () => {
    const h = new FakeHost().writeFile('/usr/local/bin/k3s', '', 0o755);
    h.units.set('k3s-agent.service', 'active');
    const d = await detectDistro(h, ALL);
    expect(d).toMatchObject({
      name: 'k3s',
      role: 'agent',
      evidence: ['unit k3s-agent.service active', 'path /usr/local/bin/k3s'],
      dataDir: '/var/lib/rancher/k3s',
      confDirs: ['/var/lib/rancher/k3s/agent/etc/cni/net.d', '/etc/cni/net.d'],
      criSocket: '/run/k3s/containerd/containerd.sock',
      units: { kubelet: ['k3s.service', 'k3s-agent.service'], runtime: [] },
    });
    expect(crictl(d, '/', 'pods', '-q')).toEqual([
      'crictl',
      '--runtime-endpoint',
      'unix:///run/k3s/containerd/containerd.sock',
      'pods',
      '-q',
    ]);
  });

  it('a stopped k3s server: the data dir from config.yaml, the role from the data dir, bin dir through data/current', async () => {
    const h = new FakeHost()
      .writeFile('/etc/rancher/k3s/config.yaml', '# k3s\nnode-name: n1\ndata-dir: "/srv/k3s"   # moved\nflannel-backend: vxlan\n')
      .writeFile('/srv/k3s/server/token', 'x')
      .writeFile('/srv/k3s/data/1a2b/bin/cni', '', 0o755)
      .symlink('/srv/k3s/data/current', '/srv/k3s/data/1a2b');
    const d = await detectDistro(h, ALL);
    expect(d.name).toBe('k3s');
    expect(d.role).toBe('server');
    expect(d.evidence).toEqual(['path /etc/rancher/k3s/config.yaml', 'data dir /srv/k3s (/etc/rancher/k3s/config.yaml)']);
    expect(d.confDirs).toEqual(['/srv/k3s/agent/etc/cni/net.d', '/etc/cni/net.d']);
    expect(d.binDirs).toEqual(['/srv/k3s/data/1a2b/bin', '/opt/cni/bin']);
    expect(d.adds.flannel!.statePaths).toEqual(['/srv/k3s/agent/etc/flannel/net-conf.json']);
  });

  it("microk8s's Flannel (its conflist's subnetFile and dataDir under the snap's common dir): plan removes that state, doctor reads that subnet.env", async () => {
    const conflist = JSON.stringify({
      name: 'microk8s-flannel-network',
      plugins: [
        {
          type: 'flannel',
          name: 'flannel-plugin',
          subnetFile: '/var/snap/microk8s/common/run/flannel/subnet.env',
          dataDir: '/var/snap/microk8s/common/var/lib/cni/flannel',
          delegate: { hairpinMode: true, isDefaultGateway: true },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
    const h = new FakeHost()
      .writeFile('/var/snap/microk8s/7229/args/cni-network/flannel.conflist', conflist)
      .symlink('/var/snap/microk8s/current', '7229')
      .writeFile('/var/snap/microk8s/common/run/flannel/subnet.env', 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.7.1/24\n')
      .writeFile(`/var/snap/microk8s/common/var/lib/cni/flannel/${'a'.repeat(64)}`, '{}')
      // The snap's own state beside them: containerd's run dir and another CNI's data dir stay.
      .writeFile('/var/snap/microk8s/common/run/containerd/io.containerd.runtime.v2.task/x', '')
      .writeFile('/var/snap/microk8s/common/var/lib/cni/calico/x', '');
    h.units.set('snap.microk8s.daemon-kubelite.service', 'active');
    const plan = await runMain(['plan', '--node', 'n1', '--cni', 'flannel'], h);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('/var/snap/microk8s/common/run/flannel');
    expect(plan.stdout).toContain('/var/snap/microk8s/common/var/lib/cni/flannel');
    expect(plan.stdout).not.toMatch(/common\/run\/containerd|common\/var\/lib\/cni\/calico/);
    expect(plan.stderr).toContain('pod network 10.1.0.0/16');
    // Healthy with flanneld running: no finding about a missing subnet.env.
    h.addProcess(['/snap/microk8s/7229/opt/cni/bin/flanneld', '--subnet-file=/var/snap/microk8s/common/run/flannel/subnet.env']);
    const doc = await runMain(['doctor', '--node', 'n1', '--json'], h);
    expect(doc.stdout).not.toContain('subnet.env');
  });

  it('microk8s: the snap dirs through `current`, /etc/cni/net.d read once as the dir it links to', async () => {
    const h = new FakeHost()
      .writeFile('/var/snap/microk8s/7229/args/cni-network/10-calico.conflist', '{}')
      .symlink('/var/snap/microk8s/current', '7229')
      .symlink('/etc/cni/net.d', '/var/snap/microk8s/current/args/cni-network');
    h.units.set('snap.microk8s.daemon-kubelite.service', 'active');
    const d = await detectDistro(h, ALL);
    expect(d.name).toBe('microk8s');
    expect(d.confDirs).toEqual(['/var/snap/microk8s/7229/args/cni-network']);
    expect(d.units).toEqual({
      kubelet: ['snap.microk8s.daemon-kubelite.service'],
      runtime: ['snap.microk8s.daemon-containerd.service'],
    });
    expect(d.adds.calico!.statePaths).toContain('/var/snap/microk8s/7229/var/lib/calico');
  });

  it('kubeadm: by kubelet.service, and by default; a running kubelet wins over files another distribution left', async () => {
    const plain = await detectDistro(new FakeHost(), ALL);
    expect(plain).toMatchObject({
      name: 'kubeadm',
      evidence: ['default: nothing of another distribution found'],
      confDirs: ['/etc/cni/net.d'],
    });
    expect(crictl(plain, '/', 'pods', '-q')).toEqual(['crictl', 'pods', '-q']);
    const h = new FakeHost().writeFile('/var/lib/rancher/rke2/agent/x', '');
    h.units.set('kubelet.service', 'active');
    const d = await detectDistro(h, ALL);
    expect(d.name).toBe('kubeadm');
    expect(d.evidence).toEqual(['unit kubelet.service active']);
  });

  it("kubeadm's files with its runtime running, or its kubelet stopped by an unfinished run, win over files a k3s removed by hand left", async () => {
    // A k3s removed by hand (its config and data dir left), the node joined with kubeadm since; kubelet stopped.
    const node = () =>
      new FakeHost()
        .writeFile('/etc/kubernetes/kubelet.conf', 'apiVersion: v1\n')
        .writeFile('/etc/rancher/k3s/config.yaml', 'write-kubeconfig-mode: "0644"\n')
        .writeFile('/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist', K3S_CONFLIST);
    const h = node();
    h.units.set('containerd.service', 'active');
    const d = await detectDistro(h, ALL);
    expect(d).toMatchObject({
      name: 'kubeadm',
      evidence: ['path /etc/kubernetes/kubelet.conf', 'unit containerd.service active'],
      confDirs: ['/etc/cni/net.d'],
    });
    // The run that stopped kubelet and containerd was killed: its rerun sees both stopped.
    const after = await detectDistro(node(), ALL, undefined, {
      units: ['kubelet.service', 'containerd.service'],
      by: 'the unfinished run of 2026-12-01T10:00:00.000Z',
    });
    expect(after).toMatchObject({
      name: 'kubeadm',
      evidence: ['unit kubelet.service stopped by the unfinished run of 2026-12-01T10:00:00.000Z', 'path /etc/kubernetes/kubelet.conf'],
    });
    // Without either, the k3s files are the only sign of a distribution, as before.
    expect((await detectDistro(node(), ALL)).name).toBe('k3s');
  });

  it('--distro names one whatever the node shows', async () => {
    const h = new FakeHost();
    h.units.set('kubelet.service', 'active');
    const d = await detectDistro(
      h,
      ALL,
      ALL.find((x) => x.name === 'rke2'),
    );
    expect(d).toMatchObject({ name: 'rke2', role: null, evidence: ['--distro'] });
  });
});

describe('layout', () => {
  it('a symlink is resolved inside the root, never on the machine running cni-sweep; a loop is null', async () => {
    const h = new FakeHost().symlink('/a', '/b').symlink('/b', '/a').symlink('/c', 'd/e').writeFile('/d/e/f', '');
    expect(await resolveNodePath(h, '/c/f')).toBe('/d/e/f');
    expect(await resolveNodePath(h, '/a/x')).toBeNull();
    expect(await resolveNodePath(h, '/missing/x')).toBe('/missing/x');
  });

  it('reads the flat YAML of k3s and rke2 configs', () => {
    expect(yamlScalars('a: 1\n"b": \'x y\'\nc: "q\\"r" # c\n  nested: no\nd: plain # note\nlist:\n  - x\n')).toEqual({
      a: '1',
      b: 'x y',
      c: 'q\\"r',
      d: 'plain',
      list: '',
    });
  });

  it("rejects a distribution that would add a bare KUBE- prefix (kube-proxy's namespace)", () => {
    expect(() => loadDistros([{ ...k3s, adds: { flannel: { chainPrefixes: ['KUBE-'] } } }])).toThrow(
      'invalid distribution k3s: adds.flannel.chainPrefixes.0: must be an exact sub-prefix, not a bare KUBE-/CNI- namespace',
    );
  });

  it("k3s's netpol chains and ipsets go with its Flannel; kube-proxy's KUBE-* stay", async () => {
    const h = new FakeHost().writeFile('/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist', K3S_CONFLIST);
    h.units.set('k3s.service', 'active');
    const d = await detectDistro(h, ALL);
    const profiles = applyDistro(
      loadProfiles().filter((p) => p.name === 'flannel'),
      d,
    );
    expect(profiles[0]!.firewall.ipsetPrefixes).toEqual([
      'KUBE-SRC-',
      'KUBE-DST-',
      'kube-router-',
      'inet6:KUBE-SRC-',
      'inet6:KUBE-DST-',
      'inet6:kube-router-',
    ]);
    const snap = await takeSnapshot(h, profiles, [], new Gaps(), d);
    expect(snap.facts[0]!.configs.map((c) => c.file)).toEqual(['/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist']);
    const dump = parseIptablesSave(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':KUBE-ROUTER-INPUT - [0:0]',
        ':KUBE-POD-FW-ABC - [0:0]',
        ':KUBE-NWPLCY-DEFAULT - [0:0]',
        ':KUBE-FIREWALL - [0:0]',
        ':KUBE-KUBELET-CANARY - [0:0]',
        ':KUBE-SERVICES - [0:0]',
        ':KUBE-ROUTERX - [0:0]',
        '-A INPUT -m comment --comment "kube-router netpol - X" -j KUBE-ROUTER-INPUT',
        '-A INPUT -j KUBE-FIREWALL',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const del = firewallDeletions(dump, { facts: snap.facts, remainingConfigs: snap.remainingConfigs, family: 4 });
    expect(del).toEqual([
      {
        table: 'filter',
        deletes: [expect.objectContaining({ chain: 'INPUT', target: 'KUBE-ROUTER-INPUT' })],
        chains: ['KUBE-ROUTER-INPUT', 'KUBE-POD-FW-ABC', 'KUBE-NWPLCY-DEFAULT'],
      },
    ]);
  });
});

describe('k3s without Flannel', () => {
  it("with `flannel-backend: none` its netpol is not Flannel's: nothing is added", async () => {
    const h = new FakeHost().writeFile('/etc/rancher/k3s/config.yaml', 'flannel-backend: none\n');
    h.units.set('k3s.service', 'active');
    const d = await detectDistro(h, ALL);
    expect(d.name).toBe('k3s');
    expect(d.adds).toEqual({});
    const flannel = loadProfiles().filter((p) => p.name === 'flannel');
    expect(applyDistro(flannel, d)).toEqual(flannel);
  });
});

describe("k3s's embedded Flannel is live", () => {
  const server = { comm: 'k3s-server', argv: ['/usr/local/bin/k3s', 'server'] };
  it('while a k3s server or agent runs with Flannel', () => {
    expect(k3sFlannelLive([server], null)).toEqual({ live: true, why: 'k3s server runs with its embedded Flannel (backend vxlan)' });
    expect(k3sFlannelLive([{ argv: ['/usr/local/bin/k3s', 'agent', '--flannel-backend=host-gw'] }], null)).toEqual({
      live: true,
      why: 'k3s agent runs with its embedded Flannel (backend host-gw)',
    });
  });
  it('not with flannel-backend none (config or command line), nor without a k3s process', () => {
    expect(k3sFlannelLive([server], { 'flannel-backend': 'none' }).live).toBe(false);
    expect(k3sFlannelLive([{ argv: ['k3s', 'server', '--flannel-backend', 'none'] }], null).live).toBe(false);
    expect(k3sFlannelLive([{ comm: 'containerd-shim', argv: ['/var/lib/rancher/k3s/data/x/bin/containerd-shim-runc-v2'] }], null)).toEqual({
      live: false,
      why: 'no k3s server or agent process',
    });
  });
});

describe('doctor on k3s', () => {
  it("checks plugins against k3s's bin dir: a link to the multi-call cni counts, a missing one or a dangling one does not", async () => {
    const h = new FakeHost()
      .writeFile('/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist', K3S_CONFLIST)
      .writeFile('/var/lib/rancher/k3s/data/9f/bin/cni', '', 0o755)
      .symlink('/var/lib/rancher/k3s/data/current', '/var/lib/rancher/k3s/data/9f')
      .symlink('/var/lib/rancher/k3s/data/9f/bin/flannel', 'cni')
      .symlink('/var/lib/rancher/k3s/data/9f/bin/bridge', 'cni')
      .symlink('/var/lib/rancher/k3s/data/9f/bin/host-local', 'cni')
      .symlink('/var/lib/rancher/k3s/data/9f/bin/portmap', 'cni-gone');
    h.units.set('k3s.service', 'active');
    const distro = await detectDistro(h, ALL);
    const all = applyDistro(loadProfiles(), distro);
    const { findings } = await doctor(h, { node: 'n1', podCidrs: [], profiles: all, allProfiles: all, distro });
    const f = findings.find((x) => x.id === 'cni-plugin-missing');
    expect(f?.title).toBe(
      '/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist needs plugins missing from /var/lib/rancher/k3s/data/9f/bin: portmap, bandwidth',
    );
    // The pod sandboxes are asked of k3s's own containerd, as a run asks them.
    const crictlCalls = h.queries.filter((a) => a[0] === 'crictl');
    expect(crictlCalls).toContainEqual([
      'crictl',
      '--runtime-endpoint',
      'unix:///run/k3s/containerd/containerd.sock',
      'pods',
      '-o',
      'json',
    ]);
    expect(crictlCalls.filter((a) => a[1] !== '--runtime-endpoint')).toEqual([]);
  });
});

describe('a live k3s Flannel is kept, and refuses --cni flannel', () => {
  const k3sNode = (config: string) => {
    const h = new FakeHost()
      .writeFile('/usr/local/bin/k3s', '', 0o755)
      .writeFile('/etc/rancher/k3s/config.yaml', config)
      .writeFile('/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist', K3S_CONFLIST)
      .writeFile('/run/flannel/subnet.env', 'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\n');
    h.units.set('k3s-agent.service', 'active');
    h.addProcess(['/usr/local/bin/k3s', 'agent'], { pid: 3100, comm: 'k3s-agent' });
    return h;
  };
  const targetsOn = async (h: FakeHost, named?: string) => {
    const d = await detectDistro(h, ALL);
    const profiles = loadProfiles();
    const layout = { confDirs: d.confDirs, embedded: (procs: Parameters<typeof embeddedLive>[1]) => embeddedLive(d, procs) };
    if (named) return chooseTargets(h, { named: profiles.filter((p) => p.name === named) }, layout);
    return chooseTargets(h, { detected: await detect(h, profiles, new Gaps(), d.confDirs) }, layout);
  };

  it('without --cni, k3s running with its Flannel keeps Flannel and says how to proceed', async () => {
    const t = await targetsOn(k3sNode('node-name: n1\n'));
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({ cni: 'flannel', action: 'keep' });
    expect(t[0]!.why).toMatch(/^live: k3s agent runs with its embedded Flannel \(backend vxlan\); stop k3s/);
  });

  it('--cni flannel refuses (exit 3) while k3s runs it', async () => {
    await expect(targetsOn(k3sNode('node-name: n1\n'), 'flannel')).rejects.toThrow(RefusedError);
    await expect(targetsOn(k3sNode('node-name: n1\n'), 'flannel')).rejects.toThrow(/flannel is live on this node: k3s agent runs/);
  });

  /** A k3s node's Flannel leftovers with kube-router's netpol chains beside them. */
  const netpolNode = (config: string) =>
    new FakeHost()
      .writeFile('/usr/local/bin/k3s', '', 0o755)
      .writeFile('/etc/rancher/k3s/config.yaml', config)
      .writeFile('/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist', K3S_CONFLIST)
      .writeFile('/run/flannel/subnet.env', 'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\n')
      .setIptables(
        'iptables-nft',
        [
          '*filter',
          ':INPUT ACCEPT [0:0]',
          ':FORWARD ACCEPT [0:0]',
          ':KUBE-ROUTER-INPUT - [0:0]',
          ':FLANNEL-FWD - [0:0]',
          '-A INPUT -m comment --comment "kube-router netpol - X" -j KUBE-ROUTER-INPUT',
          '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
          'COMMIT',
          '',
        ].join('\n'),
      );
  const touchesNetpol = /^-[DFX] .*KUBE-ROUTER-INPUT/m;

  it("k3s running with --flannel-backend=none on its command line (not in config.yaml): Flannel's leftovers go, its live netpol's chains stay", async () => {
    const h = netpolNode('node-name: n1\n');
    h.units.set('k3s-agent.service', 'active');
    h.addProcess(['/usr/local/bin/k3s', 'agent', '--flannel-backend=none'], { pid: 3100, comm: 'k3s-agent' });
    const r = await runMain(['plan', '--node', 'n1'], h);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-X FLANNEL-FWD');
    expect(r.stdout).not.toMatch(touchesNetpol);
    expect(r.stderr).toMatch(/keeping kube-router: live: k3s agent runs kube-router's network policy controller inside it/);
  });

  it("a standalone kube-router runs (k3s stopped, disable-network-policy): its chains are not taken with k3s's Flannel", async () => {
    const h = netpolNode('disable-network-policy: true\n');
    h.addProcess(['/usr/local/bin/kube-router', '--run-firewall=true', '--run-router=false'], { pid: 3200 });
    const r = await runMain(['plan', '--node', 'n1'], h);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-X FLANNEL-FWD');
    expect(r.stdout).not.toMatch(touchesNetpol);
    expect(r.stderr).toContain(
      "not taken with k3s's additions: chains KUBE-ROUTER-* (kube-router is live), chains KUBE-NWPLCY-* (kube-router is live), chains KUBE-POD-FW-* (kube-router is live)",
    );
  });

  it('the data dir from a config.yaml.d drop-in, and from the command line, which wins', async () => {
    const h = new FakeHost()
      .writeFile('/usr/local/bin/k3s', '', 0o755)
      .writeFile('/etc/rancher/k3s/config.yaml', 'data-dir: /srv/a\n')
      .writeFile('/etc/rancher/k3s/config.yaml.d/50-disk.yaml', 'data-dir: /srv/b\n');
    expect((await detectDistro(h, ALL)).confDirs[0]).toBe('/srv/b/agent/etc/cni/net.d');
    h.addProcess(['/usr/local/bin/k3s', 'server', '-d', '/srv/c'], { pid: 3300, comm: 'k3s-server' });
    const d = await detectDistro(h, ALL);
    expect(d.confDirs[0]).toBe('/srv/c/agent/etc/cni/net.d');
    expect(d.evidence).toContain('data dir /srv/c (the command line of k3s (pid 3300))');
  });

  it("k3s stopped with flannel-backend none and network policy on: its netpol chains are its configuration and stay; Flannel's leftovers go", async () => {
    const h = netpolNode('flannel-backend: none\n');
    const r = await runMain(['plan', '--node', 'n1'], h);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-X FLANNEL-FWD');
    expect(r.stdout).not.toMatch(touchesNetpol);
    expect(r.stderr).toMatch(
      /keeping kube-router: live: k3s is stopped, and its configuration \(flannel-backend none, network policy on\)/,
    );
  });

  it("a stopped k3s's options from its unit's ExecStart, where the installer writes INSTALL_K3S_EXEC", async () => {
    const unit = [
      '[Service]',
      'ExecStartPre=-/sbin/modprobe br_netfilter',
      'ExecStart=/usr/local/bin/k3s \\',
      '    server \\',
      "\t'--flannel-backend=none' \\",
      "\t'--data-dir' \\",
      "\t'/srv/k3s' \\",
      '',
    ].join('\n');
    expect(execStart(unit)).toEqual(['/usr/local/bin/k3s', 'server', '--flannel-backend=none', '--data-dir', '/srv/k3s']);
    const h = new FakeHost().writeFile('/usr/local/bin/k3s', '', 0o755).writeFile('/etc/systemd/system/k3s.service', unit);
    const d = await detectDistro(h, ALL);
    expect(d.evidence).toContain('data dir /srv/k3s (ExecStart in /etc/systemd/system/k3s.service)');
    // Without its Flannel, k3s's containerd reads /etc/cni/net.d first.
    expect(d.confDirs).toEqual(['/etc/cni/net.d', '/srv/k3s/agent/etc/cni/net.d']);
    // Running, its command line is read instead.
    h.addProcess(['/usr/local/bin/k3s', 'server'], { pid: 3400, comm: 'k3s-server' });
    expect((await detectDistro(h, ALL)).confDirs[0]).toBe('/var/lib/rancher/k3s/agent/etc/cni/net.d');
  });

  it("drains with the k3s server's own kubeconfig when no other is given; an agent, which has none, is refused with the places looked at", async () => {
    const server = k3sNode('flannel-backend: none\n').writeFile('/etc/rancher/k3s/k3s.yaml', 'apiVersion: v1\n');
    server.units.delete('k3s-agent.service');
    server.units.set('k3s.service', 'active');
    const plan = await runMain(['plan', '--node', 'n1'], server);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^kubectl --kubeconfig \/etc\/rancher\/k3s\/k3s\.yaml drain "\$NODE" /m);
    const agent = await runMain(['run', '--yes', '--node', 'n1'], k3sNode('flannel-backend: none\n'));
    expect(agent.code).toBe(3);
    expect(agent.stderr).toContain(
      'no kubeconfig found (--kubeconfig, $KUBECONFIG, /etc/rancher/k3s/k3s.yaml or /etc/kubernetes/admin.conf)',
    );
  });

  it('with flannel-backend: none the leftovers are removed', async () => {
    const t = await targetsOn(k3sNode('flannel-backend: none\n'));
    // Its stale conflist is no longer the runtime's: without its Flannel, k3s's containerd reads /etc/cni/net.d.
    expect(t).toEqual([{ cni: 'flannel', action: 'remove', why: 'leftovers: no agent of it runs' }]);
  });
});
