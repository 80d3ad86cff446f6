// Names from the node are untrusted: validation, containment of removal targets, devices that stay
// whatever a config says, a plan that stays inert whatever the names hold, and parsers that fail
// only with their own error. Property tests (fast-check) cover the parsers and path building.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { insideLocations, underRoot } from '../../src/host/host.js';
import { ownedLinks, keptLinks } from '../../src/ownership.js';
import { parseCniConfig } from '../../src/parse/conflist.js';
import { ParseError } from '../../src/parse/errors.js';
import { parseAddrs, parseLinks, parseRoutes } from '../../src/parse/iproute.js';
import { parseIptablesSave } from '../../src/parse/iptables.js';
import { parseNftTables } from '../../src/parse/nft.js';
import { parseSubnetEnv } from '../../src/parse/subnetenv.js';
import { cniConfig } from '../../src/phases/cni-config.js';
import { cniState } from '../../src/phases/cni-state.js';
import { interfaces } from '../../src/phases/interfaces.js';
import { renderScript } from '../../src/plan.js';
import { commentLine, renderArgv, shellQuote } from '../../src/util/shell.js';
import { decodeName, deviceNameProblem, encodeName, networkNameProblem } from '../../src/util/names.js';
import { FLANNEL_CONFLIST } from '../helpers/flannel-node.js';
import { ctxFor } from './helpers.js';
import { dirtyFlannelNode } from './fake-node.js';

const conflist = (name: string, delegate: Record<string, unknown> = {}) =>
  JSON.stringify({
    name,
    cniVersion: '0.3.1',
    plugins: [
      { type: 'flannel', delegate },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  });

const FLANNEL_LOCATIONS = ['/run/flannel', '/var/lib/cni/flannel'];
const FLANNEL_PARENTS = ['/var/lib/cni/networks', '/var/lib/cni/results'];

describe('name validation', () => {
  it('takes CNI network names by the spec grammar, device names by the kernel rules', () => {
    for (const ok of ['cbr0', 'k8s-pod-network', 'a.b_c-1', '0']) expect(networkNameProblem(ok)).toBeNull();
    for (const bad of ['', '.', '..', '/', 'cbr0/..', 'other-net/.', 'cbr0/../../../../../etc', '-x', '_x', 'a b', 'a\nb'])
      expect(networkNameProblem(bad), bad).not.toBeNull();
    for (const ok of ['cni0', 'eth0', 'a'.repeat(15), 'x"y', 'é']) expect(deviceNameProblem(ok), ok).toBeNull();
    for (const bad of ['', '.', '..', 'a/b', 'a:b', 'a b', 'a\tb', 'a\nb', 'a'.repeat(16), 'é'.repeat(8)])
      expect(deviceNameProblem(bad), bad).not.toBeNull();
  });

  it('marks a config with an invalid network, bridge or plugin type untrusted', () => {
    expect(parseCniConfig('/x.conflist', conflist('cbr0')).untrusted).toBeUndefined();
    expect(parseCniConfig('/x.conflist', conflist('cbr0/..')).untrusted).toMatch(/not a valid CNI network name/);
    expect(parseCniConfig('/x.conflist', conflist('cbr0', { bridge: 'a/b' })).untrusted).toMatch(/device name "a\/b"/);
    expect(parseCniConfig('/x.conf', JSON.stringify({ name: 'n', type: '../../bin/sh' })).untrusted).toMatch(/plugin type/);
  });
});

describe('containment of removal targets', () => {
  it("underRoot refuses '..' before normalising", () => {
    expect(() => underRoot('/r', '/var/lib/cni/networks/cbr0/../../../../../etc')).toThrow(/escapes the root/);
    expect(underRoot('/r', '/var/lib/cni/networks/cbr0')).toBe('/r/var/lib/cni/networks/cbr0');
  });

  it('underRoot maps every path as path.posix.normalize and join do (its shortcut for paths in normal form included)', () => {
    const seg = fc.constantFrom('', '.', 'a', 'b.c', '...', '.x', 'x.', 'net.d');
    const abs = fc.array(seg, { maxLength: 6 }).map((a) => '/' + a.join('/'));
    fc.assert(
      fc.property(abs, abs, (root, p) => {
        const normal = path.posix.normalize(p);
        expect(underRoot(root, p)).toBe(root === '/' ? normal : path.posix.join(root, normal));
      }),
      { numRuns: 5000 },
    );
  });

  it('a location, its parent or a sibling by another spelling is never a target', () => {
    for (const p of [
      '/var/lib/cni/networks/',
      '/var/lib/cni/networks/.',
      '/var/lib/cni/networks',
      '/var/lib/cni',
      '/',
      '/var/lib/cni/networks/other/.',
    ])
      expect(insideLocations(p, FLANNEL_LOCATIONS, FLANNEL_PARENTS), p).toBe(false);
    expect(insideLocations('/var/lib/cni/networks/cbr0', FLANNEL_LOCATIONS, FLANNEL_PARENTS)).toBe(true);
    expect(insideLocations('/run/flannel', FLANNEL_LOCATIONS, FLANNEL_PARENTS)).toBe(true);
  });

  it('property: whatever a conflist names its network, cni-state removes only inside its own locations', async () => {
    const name = fc.oneof(
      fc.string(),
      fc.constantFrom('', '.', '..', '/', 'cbr0/..', 'other-net/.', 'cbr0/../../../../../etc', 'cbr0/', './cbr0', 'podman'),
      fc.array(fc.constantFrom('cbr0', '..', '.', '/', 'etc', 'podman', ''), { maxLength: 8 }).map((a) => a.join('')),
    );
    await fc.assert(
      fc.asyncProperty(name, async (n) => {
        const { host } = dirtyFlannelNode();
        host.writeFile('/etc/cni/net.d/10-flannel.conflist', conflist(n));
        host.writeFile(`/var/lib/cni/networks/podman/10.88.0.3`, 'x');
        const plan = await cniState.plan(await ctxFor(host));
        const targets = plan.steps.flatMap((s) => s.removes?.items ?? []);
        for (const t of targets) expect(insideLocations(t, FLANNEL_LOCATIONS, FLANNEL_PARENTS), t).toBe(true);
        // Only the trusted network's own directory: never another network's (podman), never the parent.
        const ipam = targets.filter((t) => t.startsWith('/var/lib/cni/networks/'));
        const own = `/var/lib/cni/networks/${n}`;
        expect(ipam).toEqual(networkNameProblem(n) === null && host.exists(own) ? [own] : []);
      }),
      { numRuns: 150 },
    );
  });

  it('property: whatever the result caches are called, only entries directly in the results dir go', async () => {
    const entry = fc
      .string({ unit: 'binary', minLength: 1 })
      .filter((x) => !x.includes('/') && !x.includes('\0') && x !== '.' && x !== '..');
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 5 }), fc.constantFrom('cbr0', 'cbr0.', 'c-b'), async (suffixes, net) => {
        const { host } = dirtyFlannelNode({ pods: 1 });
        host.writeFile('/etc/cni/net.d/10-flannel.conflist', conflist(net));
        for (const x of suffixes) host.writeFile(`/var/lib/cni/results/${net}-${'a'.repeat(64)}-${x}`, '{}');
        const plan = await cniState.plan(await ctxFor(host));
        for (const t of plan.steps.flatMap((st) => st.removes?.items ?? []))
          expect(insideLocations(t, FLANNEL_LOCATIONS, FLANNEL_PARENTS), t).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('hostile names: the config stays, nothing named after it goes, the plan says why', async () => {
    for (const n of ['', '.', '/', 'cbr0/..', 'podman/.', 'cbr0/../../../../../etc']) {
      const { host } = dirtyFlannelNode();
      host.writeFile('/etc/cni/net.d/10-flannel.conflist', conflist(n));
      const ctx = await ctxFor(host);
      const state = await cniState.plan(ctx);
      const config = await cniConfig.plan(ctx);
      expect(
        state.steps.flatMap((s) => s.removes?.items ?? []),
        n,
      ).toEqual(['/run/flannel', '/var/lib/cni/flannel']);
      expect(config.steps, n).toEqual([]);
      expect(config.notes.join('\n'), n).toMatch(/^kept \/etc\/cni\/net\.d\/10-flannel\.conflist: .*nothing named after it/);
    }
  });
});

describe('devices that stay whatever a config says', () => {
  it('the uplink named as the bridge stays, and so do its routes', async () => {
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/10-flannel.conflist', conflist('cbr0', { bridge: 'eth0' }));
    const ctx = await ctxFor(host);
    const plan = await interfaces.plan(ctx);
    expect(plan.steps[0]!.removes!.items).not.toContain('eth0');
    expect(plan.steps[0]!.stdin).not.toMatch(/\beth0\b/);
    expect(plan.notes).toContain('kept eth0: it is the uplink: a default route goes through it');
  });

  it('lo stays', async () => {
    const { host } = dirtyFlannelNode();
    host.writeFile('/etc/cni/net.d/10-flannel.conflist', conflist('cbr0', { bridge: 'lo' }));
    const plan = await interfaces.plan(await ctxFor(host));
    expect(plan.steps[0]!.stdin).not.toMatch(/\blo\b/);
    expect(plan.notes).toContain('kept lo: the loopback device');
  });

  it('a bridge a config names stays when it carries a foreign address or a port that is not a pod veth', async () => {
    const { host } = dirtyFlannelNode();
    host
      .addLink({ ifname: 'br-site', linkinfo: { info_kind: 'bridge' } })
      .addLink({ ifname: 'tap0', master: 'br-site', linkinfo: { info_kind: 'tun' } });
    host.writeFile('/etc/cni/net.d/10-flannel.conflist', conflist('cbr0', { bridge: 'docker0' }));
    host.writeFile(
      '/etc/cni/net.d/20-other.conflist',
      JSON.stringify({ name: 'o', plugins: [{ type: 'flannel', delegate: { bridge: 'br-site' } }] }),
    );
    const ctx = await ctxFor(host);
    const links = ctx.snapshot.facts[0]!;
    expect(links.bridges).toEqual(['docker0', 'br-site']);
    const plan = await interfaces.plan(ctx);
    for (const d of ['docker0', 'br-site', 'tap0', 'vethsite']) expect(plan.steps[0]!.removes!.items, d).not.toContain(d);
    expect(plan.notes).toEqual(
      expect.arrayContaining([
        'kept docker0: it carries 172.17.0.1, outside the pod network 10.244.0.0/16, fd00:10:244::/56',
        'kept br-site: it has the port tap0, which is not a pod veth',
      ]),
    );
  });

  it('a device that is not a bridge stays, and cni0 with a stale address still goes', () => {
    const facts = [
      {
        profile: { interfaces: { names: ['cni0'], patterns: [], kernelOwned: [], ovsDatapaths: [], bridgePorts: true } },
        configs: [],
        networks: [],
        bridges: ['ens3'],
        podNetworks: [],
        nodeSubnets: [],
        extraFiles: [],
      },
    ] as never;
    const links = [
      { ifindex: 2, ifname: 'ens3' },
      { ifindex: 3, ifname: 'cni0', linkinfo: { info_kind: 'bridge' } },
    ];
    expect(ownedLinks(links, facts).map((l) => l.name)).toEqual(['cni0']);
    expect(keptLinks(links, facts)).toEqual([{ name: 'ens3', why: 'a config names it as the bridge, but it is a physical device' }]);
  });
});

describe('the plan is inert whatever the names hold', () => {
  const hostile = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.constantFrom('09-x\ntouch injected #.conflist', 'a\rb', '$(touch x)', '`touch x`', "it's", '"q"', '\\', '\udcff\udc80x'),
    fc.uint8Array({ maxLength: 12 }).map((b) => decodeName(b)),
  );

  it('property: bash reads every quoted argument back byte for byte', () => {
    const args = fc
      .sample(
        fc.array(
          hostile.filter((s) => !s.includes('\0')),
          { minLength: 1, maxLength: 6 },
        ),
        60,
      )
      .flat();
    const script = `printf '%s\\0' ${renderArgv(args)}\n`;
    const r = spawnSync('bash', ['-c', script]);
    expect(r.status).toBe(0);
    expect(Buffer.compare(r.stdout, Buffer.concat(args.flatMap((a) => [encodeName(a), Buffer.from([0])])))).toBe(0);
  });

  it('property: a comment line stays one line and runs nothing', () => {
    fc.assert(
      fc.property(hostile, (s) => {
        const line = commentLine(`# kept ${s}`);
        expect(line).not.toMatch(/[\n\r]/);
        const r = spawnSync('bash', ['-c', `${line}\necho ok`], { encoding: 'utf8' });
        expect(r.stdout).toBe('ok\n');
      }),
      { numRuns: 40 },
    );
  });

  it('renders a file name with a newline and a command in a note as a comment', () => {
    const plan = {
      steps: [{ argv: ['rm', '-f', '--', '/etc/cni/net.d/09-x\ntouch injected #.conflist'] }],
      notes: ['kept /etc/cni/net.d/09-x\ntouch injected #.conflist: x'],
    };
    const script = renderScript(
      [{ phase: cniConfig, plan }],
      { node: 'n\n$(id)', root: '/', cni: ['flannel'], detected: undefined, inspected: [], unreadable: ['a\nrm -rf /'] } as never,
      '0',
    );
    expect(script).toContain("rm -f -- $'/etc/cni/net.d/09-x\\x0atouch injected #.conflist'");
    expect(script).toContain('# kept /etc/cni/net.d/09-x\\x0atouch injected #.conflist: x');
    expect(script.split('\n').filter((l) => /^(touch|rm -rf \/|\$\(id\))/.test(l))).toEqual([]);
    expect(shellQuote('\udcff')).toBe("$'\\xff'");
  });

  it('property: decodeName keeps every byte', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => Buffer.compare(encodeName(decodeName(b)), Buffer.from(b)) === 0));
  });
});

describe('subnet.env as flanneld reads it', () => {
  const read = (t: string) => {
    const e = parseSubnetEnv(t);
    return [e.networks, e.subnet, e.ipv6Networks];
  };
  it('takes quotes, export, CRLF, comments and KEY: value', () => {
    const want = [['10.244.0.0/16'], '10.244.1.1/24', []];
    expect(read('FLANNEL_NETWORK="10.244.0.0/16"\nFLANNEL_SUBNET=\'10.244.1.1/24\'\n')).toEqual(want);
    expect(read('export FLANNEL_NETWORK=10.244.0.0/16\nexport FLANNEL_SUBNET=10.244.1.1/24\n')).toEqual(want);
    expect(read('FLANNEL_NETWORK=10.244.0.0/16\r\nFLANNEL_SUBNET=10.244.1.1/24\r\nFLANNEL_MTU=1450\r\n')).toEqual(want);
    expect(read('# flannel\nFLANNEL_NETWORK=10.244.0.0/16 # the cluster\n  FLANNEL_SUBNET = 10.244.1.1/24\n')).toEqual(want);
    expect(read('FLANNEL_NETWORK: 10.244.0.0/16\nFLANNEL_SUBNET: 10.244.1.1/24\n')).toEqual(want);
  });
  it('rejects what flanneld rejects, with a ParseError', () => {
    for (const bad of [
      'garbage\n',
      'FLANNEL_NETWORK="10.244.0.0/16\n',
      'FLANNEL_NETWORK=10.244.0.0\n',
      'FLANNEL_NETWORK=banana\n',
      '\0\0\0',
    ])
      expect(() => parseSubnetEnv(bad), JSON.stringify(bad)).toThrow(ParseError);
  });
});

describe('parsers fail only with ParseError', () => {
  const typed = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
    }
  };
  const text = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.json(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
  );
  it('property: conflist', () => {
    const conf = fc.oneof(
      text,
      fc
        .record({
          name: fc.string(),
          plugins: fc.array(fc.record({ type: fc.string(), delegate: fc.option(fc.record({ bridge: fc.string() })) })),
        })
        .map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(fc.constantFrom('/a.conflist', '/a.conf', '/a.json'), conf, (f, t) => {
        typed(() => parseCniConfig(f, t));
      }),
      { numRuns: 500 },
    );
    typed(() => parseCniConfig('/a.conflist', FLANNEL_CONFLIST.replace('"cbr0"', '"x\\u0000"')));
  });
  it('property: subnet.env', () => {
    const line = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc
        .tuple(
          fc.constantFrom('FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'export FLANNEL_IPV6_NETWORK', 'FLANNEL_MTU'),
          fc.constantFrom('=', ': ', ' = '),
          fc.string(),
          fc.constantFrom('', '"', "'"),
        )
        .map(([k, e, v, q]) => `${k}${e}${q}${v}${q}`),
    );
    fc.assert(
      fc.property(fc.array(line), fc.constantFrom('\n', '\r\n'), (ls, nl) => {
        typed(() => parseSubnetEnv(ls.join(nl)));
      }),
      { numRuns: 500 },
    );
  });
  it('property: iptables-save', () => {
    const line = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.constantFrom('*filter', 'COMMIT', ':X - [0:0]', '-A X -j Y', '-A X -m comment --comment "a b', '# Generated by x'),
    );
    fc.assert(
      fc.property(fc.array(line), (ls) => {
        typed(() => parseIptablesSave(ls.join('\n')));
      }),
      { numRuns: 500 },
    );
  });
  it('property: ip -j and nft -j', () => {
    fc.assert(
      fc.property(text, (t) => {
        typed(() => parseLinks(t));
        typed(() => parseAddrs(t));
        typed(() => parseRoutes(t));
        typed(() => parseNftTables(t));
      }),
      { numRuns: 500 },
    );
    typed(() => parseLinks('['.repeat(100000)));
    typed(() => parseNftTables('{"nftables":[{"table":1}]}'));
  });
});
