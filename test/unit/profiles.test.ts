import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { Gaps } from '../../src/inspect.js';
import { loadDistros } from '../../src/distros/index.js';
import { detect } from '../../src/profiles/detect.js';
import { flannel } from '../../src/profiles/flannel.js';
import { loadProfiles, selectProfiles } from '../../src/profiles/index.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';

describe('profiles', () => {
  it('the flannel profile loads with its defaults filled in', () => {
    const p = loadProfiles().find((x) => x.name === 'flannel')!;
    expect(p.defaultNetworks).toEqual(['cbr0']);
    expect(p.config.extraFiles).toEqual([]);
    expect(p.firewall.commentPrefixes).toEqual([]);
    expect(p.firewall.legacyRules).toHaveLength(16);
    expect(p.routes.protocols).toEqual([]);
  });

  it('adding a CNI is adding data: a second profile loads and can be selected', () => {
    const other = { ...flannel, name: 'toy', config: { pluginTypes: ['toy'] }, nftables: [] };
    const all = loadProfiles([flannel, other]);
    expect(selectProfiles(all, ['toy']).map((p) => p.name)).toEqual(['toy']);
  });

  it('rejects a broken profile with a readable error naming it and the field', () => {
    expect(() => loadProfiles([{ ...flannel, name: 'bad', state: { paths: ['relative/path'] } }])).toThrow(
      new UsageError('invalid profile bad: state.paths.0: must be an absolute path'),
    );
    expect(() => loadProfiles([{ ...flannel, name: 'bad', state: { paths: ['/var/lib/../../etc'] } }])).toThrow(
      'invalid profile bad: state.paths.0: must not contain ".."',
    );
    expect(() => loadProfiles([{ ...flannel, surprise: true }])).toThrow(/^invalid profile flannel: \(root\): /);
  });

  it('the built-in profiles and distributions survive JSON, as the build embeds them parsed', () => {
    // scripts/build.mjs puts JSON.stringify of these into the bundle instead of parsing them at
    // every start: a value JSON cannot carry (undefined, a RegExp, a Set) would be lost there.
    const profiles = loadProfiles();
    expect(JSON.parse(JSON.stringify(profiles))).toStrictEqual(profiles);
    const distros = loadDistros();
    expect(JSON.parse(JSON.stringify(distros))).toStrictEqual(distros);
  });

  it('selectProfiles keeps the order asked for and rejects unknown names', () => {
    const all = loadProfiles();
    expect(() => selectProfiles(all, ['flannel', 'weave'])).toThrow('unknown CNI "weave"');
  });
});

describe('detect', () => {
  it('finds Flannel on a dirty node and says why', async () => {
    const { host } = dirtyFlannelNode();
    const found = await detect(host, loadProfiles(), new Gaps());
    expect(found.find((d) => d.profile.name === 'flannel')!.evidence).toEqual([
      'config /etc/cni/net.d/10-flannel.conflist',
      'state /run/flannel',
      'state /var/lib/cni/flannel',
      'interface flannel.1',
      'interface cni0',
      'chain iptables-nft nat FLANNEL-POSTRTG',
      'chain iptables-nft filter FLANNEL-FWD',
      'chain ip6tables-nft nat FLANNEL-POSTRTG',
      'chain ip6tables-nft filter FLANNEL-FWD',
      'nftables table ip flannel-ipv4',
      'nftables table ip6 flannel-ipv6',
    ]);
  });

  it('finds nothing on a node without Flannel state', async () => {
    expect(await detect(foreignNode(), loadProfiles(), new Gaps())).toEqual([]);
  });

  it('finds a leftover overlay device alone', async () => {
    const host = foreignNode().addLink({ ifname: 'flannel.4096', linkinfo: { info_kind: 'vxlan' } });
    const found = await detect(host, loadProfiles(), new Gaps());
    expect(found.find((d) => d.profile.name === 'flannel')!.evidence).toEqual(['interface flannel.4096']);
  });
});
