// Before the first change, keep everything the run will remove: the firewall as saved (every
// backend), the files as a tar (modes, owners and symlinks kept), the link/address/route
// listings, the inverse firewall scripts, and a manifest with checksums.
import path from 'node:path';
import { MANIFEST, CHECKSUMS, MANIFEST_VERSION, type Manifest } from '../backup/manifest.js';
import { startReading, type Host } from '../host/host.js';
import { iptablesBackends } from '../inspect.js';
import type { Ctx, Phase, PlannedStep } from './types.js';
import { nothing } from './types.js';

export function backupDirName(now: Date, node: string): string {
  const ts = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${ts}-${node.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

const NFT_RULESET = ['nft', 'list', 'ruleset'];
/** Inspection reads links and addresses as one listing (addrs.json); node/links.json keeps ip's own link listing. */
const LINKS = ['ip', '-d', '-j', 'link', 'show'];
const routesAll = (family: 4 | 6) => ['ip', '-d', '-j', `-${family}`, 'route', 'show', 'table', 'all'];

/**
 * Starts the backup's reads that inspection does not make, the slowest first: the whole nftables
 * ruleset (nft decodes every iptables-nft rule: a quarter of a second on a firewall of thousands)
 * and every routing table, so that they run while the node is inspected and planned. The backup
 * takes those answers, as nothing changes before it. Only for a run without a prompt: an answer
 * that waited for a person is stale. Not installed: the answer is null, and the backup skips it.
 * The ruleset is read on its own: nft writes it a few bytes per write(2), which a file takes at
 * no cost and a pipe does not (416 ms against 180 ms at 5000 rules, in the bench).
 */
export function startBackupReads(host: Host): void {
  host.query(NFT_RULESET).catch(() => {});
  startReading(host, [routesAll(4), routesAll(6), LINKS]);
}

/** The manifest with the members of the archive tar wrote, which `restore` checks before extracting. */
const withMembers =
  (archive: string) =>
  async (host: Host, stdin: string): Promise<string> => {
    if (!host.tarMembers) return stdin;
    const manifest = JSON.parse(stdin) as Manifest;
    const members = await host.tarMembers(archive);
    return JSON.stringify({ ...manifest, members }, null, 2) + '\n';
  };

export const backup: Phase = {
  name: 'backup',
  summary: 'save everything the run will remove, under --backup-dir',
  cleanup: false,
  writesBackup: true,
  async plan(ctx: Ctx) {
    if (!ctx.hasWork) return nothing();
    const plans = await ctx.planCleanup();
    const all = [...plans.values()].flatMap((p) => p.steps);
    const dir = path.join(ctx.opts.backupDir, backupDirName(ctx.opts.now, ctx.opts.node));
    // Every step writes cni-sweep's own files only: nothing a query sees changes.
    const steps: PlannedStep[] = [{ argv: ['mkdir', '-p', '-m', '0700', '--', dir, `${dir}/firewall`, `${dir}/node`], touches: ['own'] }];
    const written: string[] = [];
    // Everything between the mkdir and the checksums is independent: it runs at the same time.
    const save = (argv: string[], rel: string) => {
      steps.push({ argv, stdoutTo: `${dir}/${rel}`, concurrent: true, touches: ['own'] });
      written.push(rel);
    };
    const firewall: Manifest['firewall'] = [];
    for (const b of await iptablesBackends(ctx.host)) {
      save([b.save], `firewall/${b.id}.save`);
    }
    const nftables: Manifest['nftables'] = [];
    const ipsets: Manifest['ipsets'] = [];
    if (await ctx.host.has('nft')) save(NFT_RULESET, 'firewall/nft.ruleset');
    save(LINKS, 'node/links.json');
    save(['ip', '-d', '-j', 'addr', 'show'], 'node/addrs.json');
    save(routesAll(4), 'node/routes-v4.json');
    save(routesAll(6), 'node/routes-v6.json');

    const files = all.flatMap((s) => s.backup?.files ?? []);
    if (files.length) {
      steps.push({
        argv: ['tar', '-C', ctx.host.root, '-cpf', `${dir}/files.tar`, '--', ...files.map((f) => f.replace(/^\/+/, ''))],
        concurrent: true,
        touches: ['own'],
      });
      written.push('files.tar');
    }
    for (const s of all) {
      const fw = s.backup?.firewall;
      if (fw) {
        const rel = `firewall/${fw.backend}.undo`;
        steps.push({ argv: ['cat'], stdin: fw.undo, stdoutTo: `${dir}/${rel}`, concurrent: true, touches: ['own'] });
        written.push(rel);
        firewall.push({ backend: fw.backend, family: fw.family, save: fw.save, restore: fw.restore, undo: rel });
      }
      for (const name of s.backup?.ipsets ?? []) {
        // A set name may hold any character but a NUL: a file name made of it must stay in firewall/ and unique.
        let rel = `firewall/ipset-${name.replace(/[^A-Za-z0-9._:-]/g, '_')}.save`;
        if (ipsets.some((x) => x.file === rel)) rel = rel.replace(/\.save$/, `-${ipsets.length}.save`);
        save(['ipset', 'save', name], rel);
        ipsets.push({ name, file: rel });
      }
      for (const t of s.backup?.nftTables ?? []) {
        const rel = `firewall/nft-${t.family}-${t.name}.nft`;
        save(['nft', 'list', 'table', t.family, t.name], rel);
        nftables.push({ ...t, file: rel });
      }
    }
    const items = (kind: string) => all.filter((s) => s.removes?.kind === kind).flatMap((s) => s.removes!.items);
    const manifest: Manifest = {
      version: MANIFEST_VERSION,
      tool: `cni-sweep ${ctx.opts.version}`,
      created: ctx.opts.now.toISOString(),
      node: ctx.opts.node,
      root: ctx.host.root,
      cni: ctx.profiles.map((p) => p.name),
      files,
      interfaces: items('interface'),
      routes: items('route'),
      ...(items('BPF attachment').length || items('BPF pin').length
        ? { bpf: { attachments: items('BPF attachment'), pins: items('BPF pin'), restorable: false as const } }
        : {}),
      firewall,
      nftables,
      ipsets,
      facts: ctx.snapshot.facts.map((f) => ({
        cni: f.profile.name,
        networks: f.networks,
        bridges: f.bridges,
        podNetworks: f.podNetworks.map((p) => p.text),
        nodeSubnets: f.nodeSubnets.map((p) => p.text),
      })),
    };
    // After the reads and tar (not beside them): it lists what tar actually wrote.
    steps.push({
      argv: ['cat'],
      stdin: JSON.stringify(manifest, null, 2) + '\n',
      stdoutTo: `${dir}/${MANIFEST}`,
      completeStdin: files.length ? withMembers(`${dir}/files.tar`) : undefined,
      touches: ['own'],
    });
    written.push(MANIFEST);
    steps.push({ argv: ['sha256sum', '--', ...written], cwd: dir, stdoutTo: `${dir}/${CHECKSUMS}`, touches: ['own'] });
    const notes = [`saving to ${dir}`];
    if (files.length)
      notes.push('manifest.json also lists every member of files.tar (name, type, size, sha256), read from it once written');
    return { steps, notes, facts: { backupDir: dir } };
  },
};
