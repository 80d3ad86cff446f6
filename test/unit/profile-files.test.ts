// Profiles from files (--profile FILE, <root>/etc/cni-sweep/profiles.d): what `profiles` lists and
// with which source, the JSON Schema of the format, the one-line error for each kind of bad file
// (exit 2, before the node is read), and the Weave Net and Antrea files that ship in profiles/,
// including the removal of their Open vSwitch datapaths.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { profileJsonSchema } from '../../src/commands/profiles.js';
import { DEFAULT_BINS, FakeHost } from '../../src/host/fake.js';
import { parseCniConfig } from '../../src/parse/conflist.js';
import { interfaces } from '../../src/phases/interfaces.js';
import { loadProfileSet, MAX_PROFILE_BYTES, readProfileFile } from '../../src/profiles/files.js';
import { builtInProfiles, useFileProfiles } from '../../src/profiles/index.js';
import type { Profile } from '../../src/profiles/schema.js';
import { isPodNetworkConfig } from '../../src/profiles/targets.js';
import { foreignNode } from './fake-node.js';
import { ctxFor, isolateKubeconfigEnv, runMain } from './helpers.js';

isolateKubeconfigEnv();
afterEach(() => {
  useFileProfiles([]);
});

const REPO = path.resolve(__dirname, '../..');
const WEAVE = path.join(REPO, 'profiles/weave.yaml');
const ANTREA = path.join(REPO, 'profiles/antrea.yaml');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-pfiles-'));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** A fresh root with these files in its profiles.d. */
function rootWith(files: Record<string, string | Buffer> = {}): { root: string; dir: string } {
  const root = path.join(tmp, `root-${++n}`);
  const dir = path.join(root, 'etc/cni-sweep/profiles.d');
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return { root, dir };
}

const cli = (argv: string[], host: FakeHost = foreignNode()) => runMain(argv, host);

/** A made-up CNI, valid as it is: the bad files below each break one thing in it. */
const MADEUP = {
  name: 'madeup',
  description: 'a made-up CNI',
  config: { pluginTypes: ['madeup'] },
  state: { paths: ['/var/lib/madeup'] },
  interfaces: { names: ['mdp0'], patterns: ['^mdpv[0-9a-f]{4}$'] },
  routes: {},
  firewall: { chainPrefixes: ['MADEUP-'], ipsetPrefixes: ['madeup-'] },
};
const yaml = (o: unknown) => YAML.stringify(o);
const json = (o: unknown) => JSON.stringify(o, null, 2);

describe('profiles from files', () => {
  it('loads JSON and YAML files of profiles.d (by name) and --profile files (in order), each with its source', async () => {
    const { root, dir } = rootWith({
      'b.json': json({ ...MADEUP, name: 'madeup-b' }),
      'a.yml': yaml({ ...MADEUP, name: 'madeup-a' }),
      'notes.txt': 'not a profile: ignored',
      '.hidden.yaml': 'not read: a hidden file',
    });
    const set = loadProfileSet(root, [WEAVE]);
    expect(set.all.map((p) => p.name)).toEqual([...builtInProfiles().map((p) => p.name), 'madeup-a', 'madeup-b', 'weave']);
    expect(set.sources.get('flannel')).toBe('built-in');
    expect(set.sources.get('madeup-a')).toBe(path.join(dir, 'a.yml'));
    expect(set.sources.get('weave')).toBe(WEAVE);
    // The defaults are filled in as for a built-in profile.
    const a = set.all.find((p) => p.name === 'madeup-a')!;
    expect(a.interfaces.bridgePorts).toBe(true);
    expect(a.interfaces.ovsDatapaths).toEqual([]);
    expect(a.agents).toEqual({ processes: [], pidfiles: [], stop: '' });
  });

  // The built-in profiles, in the order `profiles` lists them.
  const BUILT_IN = ['flannel', 'calico', 'canal', 'kube-router', 'cilium', 'multus', 'whereabouts'];
  it('`profiles` lists built-in and file profiles with their source; --json carries it too', async () => {
    const { root, dir } = rootWith({ 'madeup.yaml': yaml(MADEUP) });
    const r = await cli(['profiles', '--root', root, '--profile', WEAVE]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const heads = lines.flatMap((l, i) => (/^\S/.test(l) ? [`${l} | ${lines[i + 1]}`] : []));
    expect(heads).toEqual([
      ...BUILT_IN.map((n): unknown => expect.stringMatching(new RegExp(`^${n}: .* \\| {3}source: {5}built in$`))),
      `madeup: a made-up CNI |   source:     ${path.join(dir, 'madeup.yaml')}`,
      `weave: Weave Net (sleeve and fast datapath; weave-npc network policy) |   source:     ${WEAVE}`,
    ]);
    expect(r.stdout).toContain(
      '  interfaces: weave, vethwe-bridge, vethwe-datapath, vethwe-pcap, vethwedu, vxlan-6784, /^vethwepl[0-9A-Za-z]+$/, veths attached to its bridge; Open vSwitch datapaths datapath, weave\n',
    );
    const listed = JSON.parse((await cli(['profiles', '--root', root, '--profile', WEAVE, '--json'])).stdout);
    expect(listed.map((p: { name: string; source: string }) => `${p.name} ${p.source}`)).toEqual([
      ...BUILT_IN.map((n) => `${n} built-in`),
      `madeup ${path.join(dir, 'madeup.yaml')}`,
      `weave ${WEAVE}`,
    ]);
  });

  it('a file profile is known to plan and doctor as a built-in one is, and only with its file', async () => {
    const without = await cli(['plan', '--cni', 'weave']);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(/^cni-sweep: error: unknown CNI "weave"\n/);
    const plan = await cli(['plan', '--cni', 'weave', '--profile', WEAVE]);
    expect(plan.stderr).not.toContain('error');
    expect(plan.code).toBe(0);
    const doctor = await cli(['doctor', '--cni', 'weave,antrea', '--profile', WEAVE, '--profile', ANTREA]);
    expect(doctor.stderr).not.toContain('error');
    expect([0, 1]).toContain(doctor.code);
    // The phases know it too: a weave config counts as a pod network's while the profile is loaded.
    const weaveConfig = parseCniConfig(
      '/etc/cni/net.d/10-weave.conflist',
      JSON.stringify({ cniVersion: '0.3.0', name: 'weave', plugins: [{ name: 'weave', type: 'weave-net' }, { type: 'portmap' }] }),
    );
    useFileProfiles([]);
    expect(isPodNetworkConfig(weaveConfig)).toBe(false);
    loadProfileSet(rootWith().root, [WEAVE]);
    expect(isPodNetworkConfig(weaveConfig)).toBe(true);
  });

  it('the same file named twice (--profile and profiles.d) is one profile', () => {
    const { root, dir } = rootWith({ 'madeup.yaml': yaml(MADEUP) });
    const set = loadProfileSet(root, [path.join(dir, 'madeup.yaml'), path.join(dir, 'madeup.yaml')]);
    expect(set.all.filter((p) => p.name === 'madeup')).toHaveLength(1);
  });
});

describe('a bad profile file is one line naming the file and the field, exit 2, and nothing is read from the node', () => {
  const deep = (o: Record<string, unknown>) => ({ ...MADEUP, ...o });
  const cases: Array<[string, string, string | Buffer, string]> = [
    [
      'an interface pattern that does not compile',
      'x.yaml',
      yaml(deep({ interfaces: { names: [], patterns: ['^mdpv[0-9'] } })),
      'interfaces.patterns.0: must be a valid regular expression',
    ],
    ['a relative state path', 'x.yaml', yaml(deep({ state: { paths: ['var/lib/madeup'] } })), 'state.paths.0: must be an absolute path'],
    ['a state path with ".."', 'x.json', json(deep({ state: { paths: ['/var/lib/../../etc'] } })), 'state.paths.0: must not contain ".."'],
    ['a field the schema does not have', 'x.yaml', yaml(deep({ surprise: true })), '(root): Unrecognized key: "surprise"'],
    ['a field missing', 'x.yaml', yaml({ ...MADEUP, routes: undefined }), 'routes: Invalid input: expected object, received undefined'],
    [
      'a name the schema refuses',
      'x.yaml',
      yaml(deep({ name: 'Made Up' })),
      'name: Invalid string: must match pattern /^[a-z][a-z0-9-]*$/',
    ],
    [
      'a chain prefix that takes kube-proxy’s chains',
      'x.yaml',
      yaml(deep({ firewall: { chainPrefixes: ['KUBE-'] } })),
      `firewall.chainPrefixes.0: "KUBE-" would take kube-proxy and kubelet's KUBE-* names: give an exact sub-prefix (e.g. KUBE-ROUTER-)`,
    ],
    [
      'an empty ipset prefix',
      'x.yaml',
      yaml(deep({ firewall: { chainPrefixes: ['MADEUP-'], ipsetPrefixes: [''] } })),
      'firewall.ipsetPrefixes.0: must not be empty (it would match every name)',
    ],
    [
      'a datapath name the kernel would not take',
      'x.yaml',
      yaml(deep({ interfaces: { names: [], ovsDatapaths: ['a/b'] } })),
      'interfaces.ovsDatapaths.0: must be an interface name (1-15 characters, no "/", ":" or blanks)',
    ],
    [
      'a YAML syntax error',
      'x.yaml',
      'name: madeup\ninterfaces: [mdp0\n',
      'not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 3, column 1',
    ],
    ['a JSON syntax error', 'x.json', '{"name": "madeup",}', 'not valid JSON: '],
    ['a key given twice', 'x.yaml', 'name: madeup\nname: other\n', 'not valid YAML: Map keys must be unique at line 2, column 1'],
    ['two YAML documents', 'x.yaml', `${yaml(MADEUP)}---\n${yaml(MADEUP)}`, 'not valid YAML: Source contains multiple documents at line'],
    [
      'a tag YAML does not know',
      'x.yaml',
      'name: !!js/function "x"\n',
      'not valid YAML: Unresolved tag: tag:yaml.org,2002:js/function at line 1, column 7',
    ],
    [
      'an alias bomb',
      'x.yaml',
      [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        ...'bcdefgh'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(', ')}]`),
      ].join('\n') + '\n',
      'not valid YAML: Excessive alias count indicates a resource exhaustion attack',
    ],
    ['a list, not a profile', 'x.yaml', '- name: madeup\n', '(root): Invalid input: expected object, received array'],
    [
      'a key that is a prototype',
      'x.json',
      json({ ...MADEUP, __proto__: { polluted: true } }).replace('"name"', '"__proto__": {"polluted": true},\n  "name"'),
      '(root): Unrecognized key: "__proto__"',
    ],
    ['bytes that are not UTF-8', 'x.yaml', Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xff, 0xfe, 0x0a]), 'not UTF-8 text'],
    [
      'a huge file',
      'x.yaml',
      `# ${'x'.repeat(MAX_PROFILE_BYTES)}\n${yaml(MADEUP)}`,
      `too big: a profile file is at most ${MAX_PROFILE_BYTES} bytes`,
    ],
  ];
  for (const [what, file, content, why] of cases) {
    it(what, async () => {
      const { root, dir } = rootWith({ [file]: content });
      const r = await cli(['plan', '--root', root]);
      expect(r.code).toBe(2);
      expect(r.stderr.endsWith('\n') && r.stderr.split('\n').length).toBe(2); // one line
      expect(r.stderr.startsWith(`cni-sweep: error: profile ${path.join(dir, file)}: ${why}`), r.stderr).toBe(true);
      expect(r.roots).toEqual([]); // no host was opened
      expect(r.stdout).toBe('');
    });
  }

  it('not a regular file: a directory, a FIFO; a symlink out of profiles.d; an unreadable --profile', async () => {
    const { root, dir } = rootWith();
    fs.mkdirSync(path.join(dir, 'd.yaml'));
    let r = await cli(['profiles', '--root', root]);
    expect(r.stderr).toBe(`cni-sweep: error: profile ${dir}/d.yaml: cannot read it: a directory, not a regular file\n`);
    fs.rmdirSync(path.join(dir, 'd.yaml'));
    fs.mkdirSync(path.join(root, 'tmp'));
    // A FIFO nobody writes to: opening it for reading would block for ever.
    const fifo = path.join(root, 'tmp/fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    r = await cli(['profiles', '--root', root, '--profile', fifo]);
    expect(r.stderr).toBe(`cni-sweep: error: profile ${fifo}: cannot read it: a FIFO, not a regular file\n`);
    expect(r.code).toBe(2);
    fs.writeFileSync(path.join(root, 'tmp/outside.yaml'), yaml(MADEUP));
    fs.symlinkSync('../../../tmp/outside.yaml', path.join(dir, 'link.yaml'));
    r = await cli(['doctor', '--root', root]);
    expect(r.stderr).toBe(
      `cni-sweep: error: profile ${dir}/link.yaml: a symlink to ${root}/tmp/outside.yaml, outside ${dir}: profiles.d holds its files itself\n`,
    );
    expect(r.code).toBe(2);
    fs.rmSync(path.join(dir, 'link.yaml'));
    // A symlink inside the directory is fine.
    fs.writeFileSync(path.join(dir, 'real.yaml.disabled'), yaml(MADEUP));
    fs.symlinkSync('real.yaml.disabled', path.join(dir, 'madeup.yaml'));
    expect(loadProfileSet(root, []).all.map((p) => p.name)).toContain('madeup');
    // An absolute link names a node path: the node's file, under the root, never the machine's.
    fs.rmSync(path.join(dir, 'madeup.yaml'));
    fs.symlinkSync(`${dir.slice(root.length)}/real.yaml.disabled`, path.join(dir, 'madeup.yaml'));
    expect(loadProfileSet(root, []).all.map((p) => p.name)).toContain('madeup');
    fs.rmSync(path.join(dir, 'madeup.yaml'));
    const machines = path.join(tmp, `machine-${process.pid}`);
    fs.mkdirSync(`${machines}/profiles.d`, { recursive: true });
    fs.writeFileSync(`${machines}/profiles.d/weave.yaml`, fs.readFileSync(WEAVE));
    const etc = path.dirname(dir);
    fs.renameSync(etc, `${etc}.was`);
    fs.symlinkSync(machines, etc);
    expect(loadProfileSet(root, []).all.map((p) => p.name)).not.toContain('weave');
    fs.rmSync(etc);
    fs.renameSync(`${etc}.was`, etc);
    r = await cli(['plan', '--root', root, '--profile', 'no/such/profile.yaml']);
    expect(r.stderr).toBe('cni-sweep: error: profile no/such/profile.yaml: cannot read it: no such file\n');
    expect(r.code).toBe(2);
    r = await cli(['plan', '--root', root, '--profile', '']);
    expect(r.stderr).toMatch(/^cni-sweep: error: --profile: empty value\n/);
  });

  it('a file cannot replace a built-in profile, nor another file’s: refused, exit 2', async () => {
    const { root, dir } = rootWith({ 'flannel.yaml': yaml({ ...MADEUP, name: 'flannel' }) });
    let r = await cli(['run', '--yes', '--root', root]);
    expect(r.stderr).toBe(
      `cni-sweep: error: profile ${dir}/flannel.yaml: name: "flannel" is a built-in profile; a file cannot replace it (give this profile a name of its own)\n`,
    );
    expect(r.code).toBe(2);
    expect(r.roots).toEqual([]);
    const other = rootWith({ 'a.yaml': yaml(MADEUP) });
    fs.writeFileSync(path.join(other.root, 'b.json'), json(MADEUP));
    r = await cli(['plan', '--root', other.root, '--profile', path.join(other.root, 'b.json')]);
    expect(r.stderr).toBe(
      `cni-sweep: error: profile ${other.root}/b.json: name: "madeup" is also the name of the profile in ${other.dir}/a.yaml; profile names must be unique\n`,
    );
    const inc = rootWith({ 'a.yaml': yaml({ ...MADEUP, includes: ['flannel', 'nosuch'] }) });
    r = await cli(['plan', '--root', inc.root]);
    expect(r.stderr).toBe(`cni-sweep: error: profile ${inc.dir}/a.yaml: includes.1: no profile is named "nosuch"\n`);
  });
});

/** The subset of JSON Schema (2020-12) that zod's output for the profile schema uses, enough to check a document against it. */
function validate(schema: Record<string, unknown>, v: unknown, at = '(root)'): string[] {
  const s = schema as {
    type?: string;
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
    additionalProperties?: boolean;
    items?: Record<string, unknown>;
    prefixItems?: Array<Record<string, unknown>>;
    enum?: unknown[];
    const?: unknown;
    pattern?: string;
    minItems?: number;
    minimum?: number;
    maximum?: number;
    anyOf?: Array<Record<string, unknown>>;
  };
  if (s.anyOf) return s.anyOf.some((o) => !validate(o, v, at).length) ? [] : [`${at}: matches none of anyOf`];
  if (s.enum && !s.enum.includes(v)) return [`${at}: not one of ${s.enum.join(', ')}`];
  if ('const' in s && s.const !== v) return [`${at}: not ${String(s.const)}`];
  const type = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v === 'number' && Number.isInteger(v) ? 'integer' : typeof v;
  if (s.type && !(s.type === type || (s.type === 'number' && type === 'integer'))) return [`${at}: ${type}, not ${s.type}`];
  const out: string[] = [];
  if (type === 'string' && s.pattern && !new RegExp(s.pattern, 'u').test(v as string)) out.push(`${at}: does not match ${s.pattern}`);
  if (typeof v === 'number' && ((s.minimum !== undefined && v < s.minimum) || (s.maximum !== undefined && v > s.maximum)))
    out.push(`${at}: out of range`);
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) out.push(`${at}: fewer than ${s.minItems} items`);
    v.forEach((x, i) => {
      const item = s.prefixItems?.[i] ?? s.items;
      if (item) out.push(...validate(item, x, `${at}.${i}`));
    });
  }
  if (type === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) out.push(`${at}: ${r} is required`);
    for (const [k, x] of Object.entries(o)) {
      const p = s.properties?.[k];
      if (p) out.push(...validate(p, x, `${at}.${k}`));
      else if (s.additionalProperties === false) out.push(`${at}: ${k} is not allowed`);
    }
  }
  return out;
}

describe('profiles --schema', () => {
  it('prints the JSON Schema of a profile file, as checked in at schema/profile.schema.json, the same each time', async () => {
    const a = await cli(['profiles', '--schema']);
    const b = await cli(['profiles', '--schema']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toBe(fs.readFileSync(path.join(REPO, 'schema/profile.schema.json'), 'utf8'));
    const schema = JSON.parse(a.stdout);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    // Fields with defaults may be left out of a file: the schema describes the input, not the parsed profile.
    expect(schema.required).toEqual(['name', 'description', 'config', 'state', 'interfaces', 'routes', 'firewall']);
  });

  it('the shipped Weave Net and Antrea files and the built-in profiles validate against it; broken ones do not', () => {
    const schema = profileJsonSchema() as Record<string, unknown>;
    for (const file of [WEAVE, ANTREA]) expect(validate(schema, YAML.parse(fs.readFileSync(file, 'utf8'))), file).toEqual([]);
    for (const p of builtInProfiles()) expect(validate(schema, JSON.parse(JSON.stringify(p))), p.name).toEqual([]);
    expect(validate(schema, { ...MADEUP, surprise: 1 })).toEqual(['(root): surprise is not allowed']);
    expect(validate(schema, { ...MADEUP, state: { paths: ['relative'] } })).toEqual(['(root).state.paths.0: does not match ^\\/[^\\0]*$']);
    expect(validate(schema, { ...MADEUP, nftables: [{ family: 'ipx', name: 't' }] })).toEqual([
      '(root).nftables.0.family: not one of ip, ip6, inet, arp, bridge, netdev',
    ]);
  });
});

describe('Weave Net and Antrea, shipped as profile files', () => {
  const weave = (): Profile => readProfileFile(WEAVE, WEAVE);
  const antrea = (): Profile => readProfileFile(ANTREA, ANTREA);

  /** Weave with its fast datapath: bridge weave, veth pair vethwe-bridge/vethwe-datapath, datapath with its vxlan port, one pod. */
  function weaveNode(bins: string[] = [...DEFAULT_BINS, 'ovs-dpctl']): FakeHost {
    return foreignNode({ bins })
      .addLink({ ifname: 'weave', mtu: 1376, linkinfo: { info_kind: 'bridge' } })
      .addLink({ ifname: 'datapath', mtu: 1376, linkinfo: { info_kind: 'openvswitch' } })
      .addLink({ ifname: 'vethwe-bridge', master: 'weave', link: 'vethwe-datapath', linkinfo: { info_kind: 'veth' } })
      .addLink({ ifname: 'vethwe-datapath', master: 'datapath', link: 'vethwe-bridge', linkinfo: { info_kind: 'veth' } })
      .addLink({ ifname: 'vxlan-6784', master: 'datapath', linkinfo: { info_kind: 'vxlan', info_data: { external: true, port: 6784 } } })
      .addLink({ ifname: 'vethwepl4c1d2e3', master: 'weave', link_netnsid: 0, linkinfo: { info_kind: 'veth' } })
      .addAddr('weave', '10.32.0.1/12')
      .addRoute(4, { dst: '10.32.0.0/12', dev: 'weave', protocol: 'kernel', scope: 'link', prefsrc: '10.32.0.1' });
  }
  const FOREIGN_LINKS = ['lo', 'eth0', 'docker0', 'site-br', 'vethsite', 'vethsite-p'];

  async function planAndApply(host: FakeHost, profile: Profile) {
    const plan = await interfaces.plan(await ctxFor(host, { profiles: [profile] }));
    for (const s of plan.steps) await host.apply(s);
    return plan;
  }

  it('Weave: its links go in one ip -batch, then its datapath with ovs-dpctl del-dp; the neighbours stay', async () => {
    const host = weaveNode();
    const plan = await planAndApply(host, weave());
    expect(plan.steps.map((s) => s.argv.join(' '))).toEqual(['ip -batch -', 'ovs-dpctl del-dp datapath']);
    // The datapath is never passed to ip link delete: it would fail the whole batch.
    expect(plan.steps[0]!.stdin).toBe(
      [
        ...['weave', 'vethwe-bridge', 'vethwe-datapath', 'vxlan-6784', 'vethwepl4c1d2e3'].map((l) => `link set dev ${l} group 4242424`),
        'link delete group 4242424',
        '',
      ].join('\n'),
    );
    expect(plan.steps[0]!.removes!.items.sort()).toEqual(['vethwe-bridge', 'vethwe-datapath', 'vethwepl4c1d2e3', 'vxlan-6784', 'weave']);
    expect(plan.steps[1]!.removes).toEqual({ kind: 'interface', items: ['datapath (Open vSwitch datapath)'] });
    expect(host.links.map((l) => l.ifname)).toEqual(FOREIGN_LINKS);
    // A second plan has nothing to do.
    expect((await interfaces.plan(await ctxFor(host, { profiles: [weave()] }))).steps).toEqual([]);
  });

  it('doctor finds Weave leftovers and its fix names the profile file again', async () => {
    const r = await cli(['doctor', '--json', '--profile', path.relative(process.cwd(), WEAVE)], weaveNode());
    expect(r.code).toBe(1);
    const fixes = JSON.parse(r.stdout).findings.flatMap((f: { fixArgv: string[] | null }) => (f.fixArgv ? [f.fixArgv.join(' ')] : []));
    expect(fixes).toContain(`cni-sweep run --cni weave --profile ${WEAVE}`);
  });

  it('Weave without ovs-dpctl: the plan says it cannot remove the datapath and how; the rest goes', async () => {
    const host = weaveNode(DEFAULT_BINS);
    const plan = await planAndApply(host, weave());
    expect(plan.steps.map((s) => s.argv[0])).toEqual(['ip']);
    expect(plan.warnings).toEqual([
      'cannot remove the Open vSwitch datapath datapath: `ip link delete` cannot (Operation not supported) and ovs-dpctl is not installed; install it (Debian/Ubuntu: apt-get install openvswitch-switch; it needs the openvswitch module, not the daemon) and run again, or run `ovs-dpctl del-dp <name>` yourself',
    ]);
    expect(host.links.map((l) => l.ifname)).toEqual([...FOREIGN_LINKS, 'datapath']);
  });

  it('a datapath stays, with why, while ovs-vswitchd runs or while a port of it is not the CNI’s', async () => {
    const live = weaveNode().addProcess(['ovs-vswitchd', 'unix:/var/run/openvswitch/db.sock', '--pidfile'], { pid: 812 });
    let plan = await planAndApply(live, weave());
    expect(plan.steps.map((s) => s.argv[0])).toEqual(['ip']);
    expect(plan.notes).toContain(
      "kept Open vSwitch datapath datapath: ovs-vswitchd (pid 812) runs and manages the kernel's datapaths; stop the Open vSwitch that uses it first",
    );
    expect(live.link('datapath')).toBeDefined();
    const shared = weaveNode().addLink({ ifname: 'vm-tap0', master: 'datapath', linkinfo: { info_kind: 'tun' } });
    plan = await planAndApply(shared, weave());
    expect(plan.steps.map((s) => s.argv[0])).toEqual(['ip']);
    expect(plan.notes).toContain("kept Open vSwitch datapath datapath: its port vm-tap0 is not the CNI's");
    expect(shared.link('datapath')).toBeDefined();
    expect(shared.link('vm-tap0')?.master).toBe('datapath');
  });

  it('Antrea: ovs-system goes with its internal ports (br-int, antrea-gw0) and the tunnel port OVS made', async () => {
    const host = foreignNode({ bins: [...DEFAULT_BINS, 'ovs-dpctl'] })
      .addLink({ ifname: 'ovs-system', linkinfo: { info_kind: 'openvswitch' } })
      .addLink({ ifname: 'br-int', master: 'ovs-system', linkinfo: { info_kind: 'openvswitch' } })
      .addLink({ ifname: 'antrea-gw0', master: 'ovs-system', linkinfo: { info_kind: 'openvswitch' } })
      .addLink({ ifname: 'genev_sys_6081', master: 'ovs-system', linkinfo: { info_kind: 'geneve', info_data: { external: true } } })
      .addLink({ ifname: 'antrea-egress0', linkinfo: { info_kind: 'dummy' } })
      .addAddr('antrea-gw0', '10.10.0.1/24');
    const plan = await planAndApply(host, antrea());
    expect(plan.steps.map((s) => s.argv.join(' '))).toEqual(['ip -batch -', 'ovs-dpctl del-dp ovs-system']);
    expect(plan.steps[0]!.stdin).toBe('link delete antrea-egress0\n');
    expect(plan.steps[1]!.removes!.items).toEqual([
      'ovs-system (Open vSwitch datapath, with its ports br-int, antrea-gw0, genev_sys_6081)',
    ]);
    expect(host.links.map((l) => l.ifname)).toEqual(FOREIGN_LINKS);
  });
});
