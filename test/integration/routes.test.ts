// Routes by the exact shapes each CNI writes, on real kernel state: Calico's pool inside Flannel's
// network (Calico's own Flannel migration) in both directions, kube-router's proto 17 routes, and a
// wide FLANNEL_NETWORK holding the site's own routes.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addCalico } from '../helpers/calico-node.js';
import { inNs, type FlannelNode } from '../helpers/flannel-node.js';
import { nodeArgs, runCli, TestNodes } from '../helpers/harness.js';

const nodes = new TestNodes({ pods: 1 });
afterEach(nodes.cleanUp);
const node = (tag: string): FlannelNode => nodes.make(tag);

/** Every route of a family in every table, as `ip route` prints them (carrier flags aside). */
const routes = (n: FlannelNode, family: '-4' | '-6' = '-4') =>
  inNs(n.ns, 'ip', [family, 'route', 'show', 'table', 'all'])
    .replace(/ linkdown/g, '')
    .split('\n')
    .map((l) => l.trim())
    // The kernel adds a link-local address (and its local route) to each link a moment after it
    // comes up: on a loaded machine some arrive between the before and after listings.
    .filter((l) => l && !/^local fe80:/.test(l))
    .sort();

// Calico's pool inside 10.244.0.0/16, as Calico's migration from Flannel leaves it: a blackhole for this
// node's block (BIRD), a block of a peer on the uplink (BIRD), a VXLAN block (felix), and kube-router's
// BGP route (proto 17) in the same network.
const OVERLAP = [
  'route add blackhole 10.244.64.0/26 proto bird',
  'route add 10.244.128.0/26 via 192.168.1.12 dev eth0 proto bird',
  'route add 10.244.192.0/26 via 10.244.192.0 dev vxlan.calico onlink proto 80',
  'route add 10.244.77.0/24 via 192.168.1.13 dev eth0 proto 17',
];
const CALICO_ROUTE = /proto (bird|80)|vxlan\.calico|cali[0-9a-f]{11}/;

function overlapping(tag: string): FlannelNode {
  const n = node(tag);
  addCalico(n, { pods: 1 });
  inNs(n.ns, 'ip', ['-batch', '-'], OVERLAP.join('\n') + '\n');
  return n;
}

describe('routes by shape', () => {
  it("--cni flannel beside Calico's pool inside Flannel's network keeps every Calico route and kube-router's, byte for byte", () => {
    const n = overlapping('routes-overlap-flannel');
    const before = routes(n);
    const r = runCli(n, ['run', '--yes', '--json', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const after = routes(n);
    expect(after.filter((l) => CALICO_ROUTE.test(l))).toEqual(before.filter((l) => CALICO_ROUTE.test(l)));
    expect(after).toContain('10.244.77.0/24 via 192.168.1.13 dev eth0 proto 17');
    expect(after).toContain('blackhole 10.244.64.0/26 proto bird');
    // Flannel's host-gw lease and its overlay route are gone.
    expect(after.join('\n')).not.toMatch(/^10\.244\.2\.0\/24 via 192\.168\.1\.12|flannel\.1/m);
    expect(routes(n, '-6').join('\n')).not.toMatch(/fd00:10:244:2::\/64/);
    // The plan says why the look-alikes stay.
    const notes: string[] = JSON.parse(r.stdout).phases.find((p: { name: string }) => p.name === 'routes').notes;
    expect(notes).toContain("kept route 10.244.77.0/24 via 192.168.1.13 dev eth0 proto 17: proto 17: another routing daemon's route");
    expect(notes).toContain("kept route 10.244.128.0/26 via 192.168.1.12 dev eth0 proto bird: proto bird: another routing daemon's route");
  });

  it("--cni calico beside Flannel keeps Flannel's host-gw and overlay routes and the site's BIRD routes, and removes Calico's in its shapes", () => {
    const n = overlapping('routes-overlap-calico');
    // The site's own BIRD: an aggregate blackhole and a learnt /24, neither in Calico's shapes.
    const site = ['blackhole 10.0.0.0/8 proto bird', '172.31.0.0/24 via 192.168.1.2 dev eth0 proto bird'];
    inNs(n.ns, 'ip', ['-batch', '-'], site.map((l) => `route add ${l}\n`).join(''));
    const before = routes(n);
    const before6 = routes(n, '-6');
    const r = runCli(n, ['run', '--yes', '--cni', 'calico', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const after = routes(n);
    expect(after.filter((l) => CALICO_ROUTE.test(l))).toEqual([...site].sort());
    // Everything else in the table is exactly as it was: Flannel's routes, kube-router's, the site's.
    expect(after).toEqual(before.filter((l) => !CALICO_ROUTE.test(l) || site.includes(l)));
    expect(after).toContain('10.244.2.0/24 via 192.168.1.12 dev eth0');
    expect(after).toContain('10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink');
    expect(routes(n, '-6')).toEqual(before6.filter((l) => !CALICO_ROUTE.test(l)));
  });

  it("with FLANNEL_NETWORK=10.0.0.0/8 the site's route via the uplink gateway and a route in another table stay; real leases go", () => {
    const n = node('routes-wide');
    fs.writeFileSync(
      path.join(n.root, 'run/flannel/subnet.env'),
      'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
    inNs(
      n.ns,
      'ip',
      ['-batch', '-'],
      [
        'route add 10.50.0.0/16 via 192.168.1.1 dev eth0',
        'route add 10.60.1.0/24 via 192.168.1.12 dev eth0 table 100',
        'route add 10.99.3.0/24 via 192.168.1.13 dev eth0',
        '',
      ].join('\n'),
    );
    const plan = runCli(n, ['plan', '--json', '--cni', 'flannel', ...nodeArgs(n)]);
    const phase = JSON.parse(plan.stdout).phases.find((p: { name: string }) => p.name === 'routes');
    expect(phase.notes).toContain('kept route 10.50.0.0/16 via 192.168.1.1 dev eth0: /16 is not a lease (/24)');
    const r = runCli(n, ['run', '--yes', '--cni', 'flannel', ...nodeArgs(n)]);
    expect(r.code).toBe(0);
    const after = routes(n);
    expect(after).toContain('10.50.0.0/16 via 192.168.1.1 dev eth0');
    expect(after).toContain('10.60.1.0/24 via 192.168.1.12 dev eth0 table 100');
    expect(after).toContain('192.168.50.0/24 via 192.168.1.1 dev eth0');
    expect(after.join('\n')).not.toMatch(/^10\.(99\.3|244\.2)\.0\/24 via/m);
  });
});
