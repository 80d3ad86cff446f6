// Work that grows with the node (pods, rules, routes), at the size of a big node: the exact result
// of the sets and maps that replaced scans inside loops. Not timed (speed is the bench's): at these
// sizes the scans took 8.5 s (restore's undo check) and 78 s (the prompt's grouping) where these
// take 0.65 s and a few ms on a loaded 2-core VM, which the test run's duration shows.
import { describe, expect, it } from 'vitest';
import type { ProfileFacts } from '../../src/inspect.js';
import { classifyRoutes, firewallDeletions, missingFromDump, undoScript, type FamilyRoute } from '../../src/ownership.js';
import { parseIptablesSave } from '../../src/parse/iptables.js';
import { removalSummary } from '../../src/plan.js';
import { cacheFiles } from '../../src/phases/remove-sandboxes.js';
import { loadProfiles } from '../../src/profiles/index.js';
import { networkOf, parsePrefix } from '../../src/util/cidr.js';

const flannel = loadProfiles().find((p) => p.name === 'flannel')!;
const net = (s: string) => networkOf(parsePrefix(s)!);
const hex = (i: number, n: number) => i.toString(16).padStart(n, '0');

function facts(over: Partial<ProfileFacts> = {}): ProfileFacts[] {
  return [
    {
      profile: flannel,
      configs: [],
      extraFiles: [],
      networks: ['cbr0'],
      bridges: ['cni0'],
      podNetworks: [net('10.0.0.0/14')],
      nodeSubnets: [net('10.0.4.0/22')],
      ...over,
    },
  ];
}

/** iptables-save of a Flannel node: the bridge plugin's two chains per pod, with the rules leading to them, and foreign rules. */
function firewall(pods: number, foreign: number): string {
  const chains: string[] = [];
  const rules: string[] = [];
  for (let i = 0; i < pods; i++) {
    const c = `CNI-${hex(i, 24)}`;
    chains.push(`:${c} - [0:0]`);
    const comment = `-m comment --comment "name: \\"cbr0\\" id: \\"${hex(i, 64)}\\""`;
    rules.push(`-A POSTROUTING -s 10.0.${4 + (i >> 8)}.${i & 255}/32 ${comment} -j ${c}`);
    rules.push(`-A ${c} -d 10.0.4.0/22 ${comment} -j ACCEPT`);
    rules.push(`-A ${c} ! -d 224.0.0.0/4 ${comment} -j MASQUERADE`);
  }
  for (let i = 0; i < foreign; i++) rules.push(`-A POSTROUTING -s 192.168.${i >> 8}.${i & 255}/32 -j RETURN`);
  return ['*nat', ':PREROUTING ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ...chains, ...rules, 'COMMIT', ''].join('\n');
}

describe('linear in the size of the node', () => {
  it('restore: what of a 2000-pod undo is missing from the current rules, against 5000 foreign rules', () => {
    const dump = parseIptablesSave(firewall(2000, 5000));
    const tables = firewallDeletions(dump, { facts: facts(), remainingConfigs: [], family: 4 });
    expect(tables[0]!.chains).toHaveLength(2000);
    expect(tables[0]!.deletes).toHaveLength(2000);
    const undo = undoScript(dump, tables);
    // Nothing was removed: nothing is missing.
    const all = missingFromDump(undo, dump);
    expect(all).toBe('');
    // The first pod's chain and rules, and the rule leading to it, were removed.
    const c0 = `CNI-${hex(0, 24)}`;
    const without = parseIptablesSave(
      firewall(2000, 5000)
        .split('\n')
        .filter((l) => !l.includes(c0))
        .join('\n'),
    );
    const some = missingFromDump(undo, without);
    const comment = `-m comment --comment "name: \\"cbr0\\" id: \\"${hex(0, 64)}\\""`;
    expect(some).toBe(
      [
        '*nat',
        `:${c0} - [0:0]`,
        `-A ${c0} -d 10.0.4.0/22 ${comment} -j ACCEPT`,
        `-A ${c0} ! -d 224.0.0.0/4 ${comment} -j MASQUERADE`,
        `-I POSTROUTING 1 -s 10.0.4.0/32 ${comment} -j ${c0}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  // Each route's scan stopped at the first cheap mismatch (16M comparisons, ~0.5 s, at 4000
  // routes); what this shows is that hoisting the connected routes out of the loop kept the decisions.
  it('routes: 4000 host-gw routes of a big cluster, the connected route listed last', () => {
    // In the kernel's order: default, the other nodes' /24 leases of a /12 pod network via their
    // addresses on the uplink's segment, then that segment's connected route.
    const routes: FamilyRoute[] = [{ dst: 'default', gateway: '192.168.255.254', dev: 'eth0', family: 4 }];
    for (let i = 0; i < 4000; i++)
      routes.push({ dst: `10.${16 + (i >> 8)}.${i & 255}.0/24`, gateway: `192.168.${i >> 8}.${i & 255}`, dev: 'eth0', family: 4 });
    // One whose gateway is off the segment: it stays, with why.
    routes.push({ dst: '10.31.255.0/24', gateway: '172.16.0.9', dev: 'eth0', family: 4 });
    routes.push({ dst: '192.168.0.0/16', dev: 'eth0', protocol: 'kernel', scope: 'link', family: 4 });
    const f = facts({ podNetworks: [net('10.16.0.0/12')], nodeSubnets: [net('10.31.254.0/24')] });
    const r = classifyRoutes(routes, { facts: f, ownedDevices: new Set(), dyingDevices: new Set(), cniDevices: new Set() });
    expect(r.owned).toHaveLength(4000);
    expect(r.owned[3999]!.dst).toBe(`10.31.159.0/24`);
    expect(r.kept.map((k) => `${k.route.dst}: ${k.why}`)).toEqual(["10.31.255.0/24: its gateway is not on the uplink's connected network"]);
  });

  it("the prompt's summary of 20000 removed items, grouped by their per-pod ids", () => {
    const veths = Array.from({ length: 20000 }, (_, i) => `veth${hex(i, 8)}`);
    const r = removalSummary([
      {
        plan: {
          steps: [{ argv: ['ip', '-batch', '-'], removes: { kind: 'interface', items: [...veths, 'cni0', 'flannel.1'] } }],
          notes: [],
        },
      },
    ]);
    expect(r).toEqual(['interface (20002): veth* (20000), cni0, flannel.1']);
  });

  it("a pod's result cache is the first name starting with <network>-<id>-, ids with dashes included", () => {
    const names = ['cbr0-aa-eth0', 'cbr0-aa-net1', 'cbr0-aa-bb-eth0', 'cbr0x-aa-eth0', 'podman-aa-eth0', 'cbr0-', 'cbr0-cc', 'other'];
    const scan = (id: string) => names.find((c) => c.startsWith(`cbr0-${id}-`));
    const byId = cacheFiles(names, 'cbr0');
    for (const id of ['aa', 'aa-bb', 'bb', 'cc', 'x-aa', 'aa-bb-eth0']) expect(byId.get(id)).toBe(scan(id));
    expect(byId.get('aa')).toBe('cbr0-aa-eth0');
    expect(byId.get('aa-bb')).toBe('cbr0-aa-bb-eth0');
    // 1000 pods, 1000 caches.
    const many = Array.from({ length: 1000 }, (_, i) => `cbr0-${hex(i, 64)}-eth0`);
    const all = cacheFiles(many, 'cbr0');
    expect(all.size).toBe(1000);
    expect(all.get(hex(999, 64))).toBe(many[999]);
  });
});
