// The target-selection rule on the fake host: a live CNI (its agent runs in cni-sweep's network
// namespace) is never removed by default and refuses --cni; beside other CNIs, neither is the one
// whose config the runtime uses.
import { describe, expect, it } from 'vitest';
import { RefusedError } from '../../src/errors.js';
import type { FakeHost } from '../../src/host/fake.js';
import { Gaps } from '../../src/inspect.js';
import { detect } from '../../src/profiles/detect.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { agentsOf, chooseTargets } from '../../src/profiles/targets.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';

const profiles = loadProfiles();
const byName = (n: string) => profiles.find((p) => p.name === n)!;

/** Calico's config and state: its config sorts before Flannel's, so the runtime uses it. */
const withCalico = (host: FakeHost) =>
  host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST).writeFile('/var/lib/calico/nodename', 'node-1');

async function targets(host: FakeHost) {
  return chooseTargets(host, { detected: await detect(host, profiles, new Gaps()) });
}

const BIRD = ['bird', '-R', '-s', '/var/run/calico/bird.ctl', '-d', '-c', '/etc/calico/confd/config/bird.cfg'];

describe('without --cni', () => {
  it('keeps a running Calico and removes the Flannel leftovers beside it', async () => {
    const host = withCalico(dirtyFlannelNode().host).addProcess(['calico-node', '-felix'], { pid: 4242, comm: 'calico-node' });
    expect(await targets(host)).toEqual([
      { cni: 'flannel', action: 'remove', why: 'leftovers: no agent of it runs and the runtime does not use its config' },
      { cni: 'calico', action: 'keep', why: 'live: its agent runs: calico-node (pid 4242)' },
    ]);
  });

  it('keeps the CNI whose config the runtime uses (first in lexical order) even with no agent seen', async () => {
    const host = withCalico(dirtyFlannelNode().host);
    expect(await targets(host)).toEqual([
      { cni: 'flannel', action: 'remove', why: 'leftovers: no agent of it runs and the runtime does not use its config' },
      {
        cni: 'calico',
        action: 'keep',
        why: 'the runtime uses its config /etc/cni/net.d/10-calico.conflist (the first in lexical order): pods get their network from it',
      },
    ]);
  });

  it('keeps a single live CNI, and says why; removes a single dead one', async () => {
    const { host } = dirtyFlannelNode();
    expect(await targets(host)).toEqual([
      {
        cni: 'flannel',
        action: 'remove',
        why: "no agent of it runs; its config /etc/cni/net.d/10-flannel.conflist is still the runtime's, so new pods get no network until another CNI is installed",
      },
    ]);
    host.addProcess(['/opt/bin/flanneld', '--ip-masq', '--kube-subnet-mgr'], { pid: 77 });
    expect(await targets(host)).toEqual([{ cni: 'flannel', action: 'keep', why: 'live: its agent runs: flanneld (pid 77)' }]);
  });

  it('an agent renamed with exec -a counts by argv[0]; one in another network namespace does not', async () => {
    const host = withCalico(dirtyFlannelNode().host).addProcess(['flanneld', '600'], { comm: 'sleep', otherNetns: true });
    expect((await targets(host)).find((t) => t.cni === 'flannel')?.action).toBe('remove');
    host.addProcess(['flanneld', '600'], { pid: 5150, comm: 'sleep' });
    expect((await targets(host)).find((t) => t.cni === 'flannel')).toEqual({
      cni: 'flannel',
      action: 'keep',
      why: 'live: its agent runs: flanneld (pid 5150)',
    });
  });

  it("BIRD and confd are Calico's only with Calico's paths on their command line: a site's own BIRD makes nothing live", () => {
    const calico = byName('calico');
    const proc = (argv: string[], pid = 1) => ({ pid, comm: argv[0]!.split('/').pop()!, argv });
    expect(agentsOf(calico, [proc(['bird', '-c', '/etc/bird/bird.conf']), proc(['/usr/sbin/bird6', '-f'])])).toEqual([]);
    expect(agentsOf(calico, [proc(['confd', '-confdir=/etc/confd'])])).toEqual([]);
    expect(agentsOf(calico, [proc(BIRD, 9)]).map((p) => p.pid)).toEqual([9]);
    expect(agentsOf(calico, [proc(['confd', '-confdir=/etc/calico/confd', '-interval=5'], 10)]).map((p) => p.pid)).toEqual([10]);
    expect(agentsOf(calico, [proc(['calico-felix'], 11)]).map((p) => p.pid)).toEqual([11]);
    // Canal runs both agents.
    expect(agentsOf(byName('canal'), [proc(['/opt/bin/flanneld'], 12), proc(BIRD, 13)]).map((p) => p.pid)).toEqual([12, 13]);
    expect(agentsOf(byName('flannel'), [proc(BIRD, 13), proc(['calico-node', '-felix'], 14)])).toEqual([]);
  });

  it('keeps every CNI a Multus config may delegate to when its delegate is unknown (no delegates, no clusterNetwork)', async () => {
    const host = withCalico(dirtyFlannelNode().host).writeFile(
      '/etc/cni/net.d/00-multus.conf',
      JSON.stringify({
        cniVersion: '0.3.1',
        name: 'multus-cni-network',
        type: 'multus',
        kubeconfig: '/etc/cni/net.d/multus.d/multus.kubeconfig',
      }),
    );
    expect((await targets(host)).map((t) => `${t.action} ${t.cni}`)).toEqual(['keep flannel', 'keep calico', 'keep multus']);
  });
});

describe('--cni', () => {
  it('refuses a live CNI, naming its agent and pid and how to stop it', async () => {
    const host = withCalico(dirtyFlannelNode().host).addProcess(BIRD, { pid: 321 });
    const err = await chooseTargets(host, { named: [byName('calico')] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as RefusedError).message).toBe(
      '--cni calico: calico is live on this node: its agent runs: bird (pid 321); cni-sweep never removes a live CNI',
    );
    expect((err as RefusedError).hint).toContain('kubectl -n kube-system delete daemonset calico-node');
    const flannel = dirtyFlannelNode().host.addProcess(['/opt/bin/flanneld', '--ip-masq'], { pid: 88 });
    const refused = await chooseTargets(flannel, { named: [byName('flannel')] }).catch((e: unknown) => e);
    expect((refused as RefusedError).message).toContain('flanneld (pid 88)');
    expect((refused as RefusedError).hint).toContain('kubectl -n kube-flannel delete daemonset kube-flannel-ds');
  });

  it('allows the CNI the runtime uses, and says pods use it now', async () => {
    const host = withCalico(dirtyFlannelNode().host);
    expect(await chooseTargets(host, { named: [byName('calico')] })).toEqual([
      {
        cni: 'calico',
        action: 'remove',
        why: "named with --cni; pods use it now: /etc/cni/net.d/10-calico.conflist is the runtime's config, so new pods get no network until another CNI is installed",
      },
    ]);
    expect(await chooseTargets(host, { named: [byName('flannel')] })).toEqual([
      { cni: 'flannel', action: 'remove', why: 'named with --cni' },
    ]);
  });

  it('a node without any CNI: nothing detected, nothing targeted', async () => {
    expect(await targets(foreignNode())).toEqual([]);
  });
});
