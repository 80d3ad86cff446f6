// `cni-sweep restore <backup>`: puts the removed files and the CNI's firewall rules back, after
// checking the checksums. Rules go back through `iptables-restore --noflush` carrying only what
// is missing now, so nothing is duplicated and no chain is flushed by being declared again. The
// ipsets the run destroyed go back first (only those that are gone), as rules cannot match a set
// that does not exist.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { sha256 } from '../util/lazy.js';
import type { Host } from '../host/host.js';
import { containment, Gaps, listIpsets, nftTablesPresent, saveIptables } from '../inspect.js';
import { missingFromDump } from '../ownership.js';
import type { PlannedStep } from '../phases/types.js';
import { CHECKSUMS, MANIFEST, ManifestSchema, type Manifest } from './manifest.js';
import type { TarMember } from './tar.js';
import { plural } from '../util/plural.js';

export interface RestorePlan {
  dir: string;
  manifest: Manifest;
  steps: PlannedStep[];
  notes: string[];
}

function bad(dir: string, what: string): never {
  throw new UsageError(`backup ${dir}: ${what}`, 'pass a directory listed by `cni-sweep backups`');
}

/** Reads and checks a backup: the manifest parses and every file matches SHA256SUMS. */
export function readBackup(dir: string): Manifest {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) bad(dir, 'no such directory');
  let sums: string;
  try {
    sums = fs.readFileSync(path.join(dir, CHECKSUMS), 'utf8');
  } catch (e) {
    bad(dir, `cannot read ${CHECKSUMS} (${(e as NodeJS.ErrnoException).code})`);
  }
  const listed = new Set<string>();
  for (const line of sums.split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) bad(dir, `${CHECKSUMS} is corrupt`);
    const [want, rel] = [m[1]!, m[2]!]; // both groups are mandatory
    if (rel.includes('..') || path.isAbsolute(rel)) bad(dir, `${CHECKSUMS} names a path outside the backup: ${rel}`);
    let data: Buffer;
    try {
      data = fs.readFileSync(path.join(dir, rel));
    } catch {
      bad(dir, `${rel} is missing`);
    }
    if (sha256(data) !== want) bad(dir, `checksum mismatch for ${rel}: the backup is corrupt or was changed`);
    listed.add(rel);
  }
  if (!listed.has(MANIFEST)) bad(dir, `${MANIFEST} is not covered by ${CHECKSUMS}`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8'));
  } catch (e) {
    bad(dir, `${MANIFEST}: ${(e as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!; // a failed parse has at least one issue
    bad(dir, `${MANIFEST}: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  for (const rel of [
    ...parsed.data.firewall.map((f) => f.undo),
    ...parsed.data.nftables.map((t) => t.file),
    ...parsed.data.ipsets.map((s) => s.file),
    ...(parsed.data.files.length ? ['files.tar'] : []),
  ]) {
    if (!listed.has(rel)) bad(dir, `${rel} is not covered by ${CHECKSUMS}`);
  }
  return parsed.data;
}

/** A member name as a list of path segments; null when absolute or when it climbs with "..". */
function segments(name: string): string[] | null {
  if (name.startsWith('/')) return null;
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length && !parts.includes('..') ? parts : null;
}

/**
 * Where a link stored at `name` points, as a real path; null when a relative target climbs above
 * the root. An absolute target names a node path: under the root, as the node resolves it.
 */
function linkTarget(root: string, name: string, target: string): string | null {
  if (target.startsWith('/')) return path.posix.join(root, path.posix.normalize(target));
  const parts = name.split('/').slice(0, -1);
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p !== '..') parts.push(p);
    else if (!parts.pop()) return null;
  }
  return path.posix.join(root, ...parts);
}

const inside = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);

/**
 * Every member of files.tar, checked before anything is extracted: a name the run removed (no
 * absolute name, no ".."), a plain file, directory or link, no link that leads out of the root
 * and nothing stored below a link, and, when the manifest lists the members (version 2), exactly
 * those, with their types, sizes, checksums and link targets. A recomputed SHA256SUMS does not
 * make a changed archive pass.
 */
function checkMembers(dir: string, manifest: Manifest, members: TarMember[], root: string): string[] {
  const removed = manifest.files.map((f) => f.replace(/^\/+/, '').replace(/\/+$/, ''));
  const links: string[] = [];
  const names = new Set<string>();
  const others: string[] = [];
  for (const m of members) {
    const parts = segments(m.name);
    if (!parts) bad(dir, `files.tar holds ${JSON.stringify(m.name)}: an absolute name or one with ".." is never extracted`);
    const name = parts.join('/');
    if (!removed.some((f) => name === f || name.startsWith(`${f}/`)))
      bad(dir, `files.tar holds ${name}, which is not one of the paths the run removed`);
    // A FIFO or socket under a removed state directory (a CNI's control socket) is archived as tar
    // finds it; a device node could be anything. Neither is ever extracted: said, and skipped.
    if (m.type === 'other') others.push(name);
    const under = links.find((l) => name.startsWith(`${l}/`));
    if (under) bad(dir, `files.tar holds ${name} below the link ${under}`);
    if (m.type === 'symlink') {
      const to = linkTarget(root, name, m.link ?? '');
      if (to === null || !inside(to, root)) bad(dir, `files.tar holds ${name}, a link pointing outside the root (${m.link})`);
      links.push(name);
    }
    if (m.type === 'hardlink' && !names.has((m.link ?? '').replace(/\/+$/, '')))
      bad(dir, `files.tar holds ${name}, a hard link to ${m.link}, which is not an earlier member`);
    names.add(name);
  }
  if (!manifest.members) return others;
  const want = new Map(manifest.members.map((m) => [m.name, m]));
  for (const m of members) {
    const w = want.get(m.name);
    if (!w) bad(dir, `files.tar holds ${m.name}, which the manifest does not list`);
    for (const k of ['type', 'size', 'sha256', 'link'] as const)
      if (w[k] !== m[k])
        bad(dir, `files.tar member ${m.name} does not match the manifest: ${k} ${m[k] ?? 'none'}, recorded ${w[k] ?? 'none'}`);
    want.delete(m.name);
  }
  const lost = [...want.keys()];
  if (lost.length) bad(dir, `files.tar lacks ${lost[0]}${lost.length > 1 ? ` and ${lost.length - 1} more` : ''}, which the manifest lists`);
  return others;
}

export async function planRestore(host: Host, dir: string, gaps: Gaps): Promise<RestorePlan> {
  const manifest = readBackup(dir);
  const steps: PlannedStep[] = [];
  const notes: string[] = [];
  if (manifest.files.length) {
    if (!host.tarMembers) bad(dir, 'files.tar cannot be checked here');
    let members: TarMember[];
    try {
      members = await host.tarMembers(path.join(dir, 'files.tar'));
    } catch (e) {
      bad(dir, `files.tar is not a readable tar archive: ${(e as Error).message}`);
    }
    const others = checkMembers(dir, manifest, members, host.root);
    if (others.length)
      notes.push(
        `not restored: ${others.slice(0, 3).join(', ')}${others.length > 3 ? ` and ${others.length - 3} more` : ''}: not a file, directory or link (a FIFO, socket or device), never extracted`,
      );
    if (!manifest.members)
      notes.push(
        `the manifest (version ${manifest.version}) does not list the members of files.tar: they were checked against the paths it removed only`,
      );
    // Only the paths that are gone: one that exists again (the new CNI wrote it, or an earlier
    // restore put it back) is left as it is, and a second restore says it restored nothing.
    const gone: string[] = [];
    let present = 0;
    // tar finds each member's directories as the kernel does: a symlink among them would lead the
    // extraction elsewhere (under --root, out of it), where the node never looks.
    const contained = containment(host);
    for (const f of manifest.files) {
      if (!(await contained(f))) {
        notes.push(`not restored: ${f}: a directory above it is a symlink, and restore never extracts through one`);
        continue;
      }
      if ((await host.entryType(f)) === null) {
        gone.push(f);
        continue;
      }
      // A directory that exists with saved entries missing (a restore that stopped part way, on a
      // full disk or killed): those are put back; what exists stays (--skip-old-files).
      const rel = f.replace(/^\/+/, '');
      let missing = 0;
      for (const m of members) {
        if (m.name === rel || !m.name.startsWith(`${rel}/`) || m.type === 'other') continue;
        if ((await host.entryType(`/${m.name}`)) === null) missing++;
      }
      if (missing) {
        gone.push(f);
        notes.push(
          `completes ${f}: ${plural(missing, 'saved entry', 'saved entries')} of it ${missing === 1 ? 'is' : 'are'} missing; what exists is left as it is`,
        );
      } else present++;
    }
    if (present) notes.push(`${present} of the ${manifest.files.length} saved paths exist: left as they are`);
    // --skip-old-files: a file the new CNI (or the operator) has written since is never overwritten.
    if (gone.length)
      steps.push({
        argv: [
          'tar',
          '-C',
          host.root,
          '-xpf',
          path.join(dir, 'files.tar'),
          '--skip-old-files',
          // Exactly these names (no pattern, anchored at the archive's root).
          ...(others.length ? ['--anchored', '--no-wildcards', ...others.map((o) => `--exclude=${o}`)] : []),
          '--',
          ...gone.map((f) => f.replace(/^\/+/, '')),
        ],
        removes: { kind: 'file restored', items: gone },
      });
  }
  if (manifest.ipsets.length) {
    const present = await listIpsets(host, gaps);
    if (!present)
      notes.push(
        `ipset is not installed here: ${plural(manifest.ipsets.length, 'ipset')} not restored (see ${path.join(dir, 'firewall')})`,
      );
    else
      for (const s of manifest.ipsets) {
        // An existing set (the CNI's agent made it again) is never touched: its members are the agent's.
        if (present.includes(s.name)) notes.push(`ipset ${s.name} exists: left as it is`);
        else
          steps.push({ argv: ['ipset', 'restore', '-file', path.join(dir, s.file)], removes: { kind: 'ipset restored', items: [s.name] } });
      }
  }
  for (const fw of manifest.firewall) {
    if (!(await host.has(fw.save)) || !(await host.has(fw.restore))) {
      notes.push(`${fw.backend}: ${fw.restore} is not installed here; rules not restored (see ${path.join(dir, fw.undo)})`);
      continue;
    }
    const current = await saveIptables(host, { id: fw.backend, family: fw.family, save: fw.save, restore: fw.restore }, gaps);
    if (!current) continue;
    const missing = missingFromDump(fs.readFileSync(path.join(dir, fw.undo), 'utf8'), current);
    if (missing)
      steps.push({
        argv: [fw.restore, '--noflush', '-w'],
        stdin: missing,
        removes: { kind: `${fw.backend} rules restored`, items: missing.split('\n').filter((l) => /^-[AI] /.test(l)) },
      });
    else notes.push(`${fw.backend}: every rule is already present`);
  }
  if (manifest.nftables.length) {
    const tables = (await nftTablesPresent(host, manifest.nftables, gaps)) ?? [];
    for (const t of manifest.nftables) {
      if (tables.some((x) => x.family === t.family && x.name === t.name))
        notes.push(`nftables table ${t.family} ${t.name} exists: left as it is`);
      else
        steps.push({
          argv: ['nft', '-f', path.join(dir, t.file)],
          removes: { kind: 'nftables table restored', items: [`${t.family} ${t.name}`] },
        });
    }
  }
  if (manifest.interfaces.length || manifest.routes.length) {
    notes.push(
      `interfaces (${manifest.interfaces.join(', ') || 'none'}) and routes (${manifest.routes.length}) are not recreated: the CNI's agent recreates them; their listings are in ${path.join(dir, 'node')}`,
    );
  }
  if (manifest.bpf) {
    const { attachments, pins } = manifest.bpf;
    notes.push(
      `BPF state is not restored: ${plural(attachments.length, 'BPF attachment')} and ${plural(pins.length, 'bpffs pin')} were removed (listed in manifest.json); a pinned BPF object lives in the kernel and cannot be put back: the CNI's agent creates them again`,
    );
  }
  return { dir, manifest, steps, notes };
}

export interface BackupInfo {
  dir: string;
  created: string;
  node: string;
  cni: string[];
  bytes: number;
  ok: boolean;
  error?: string;
}

function size(p: string): number {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((n, e) => n + size(path.join(p, e)), 0);
}

export function listBackups(base: string): BackupInfo[] {
  if (!fs.existsSync(base)) return [];
  const out: BackupInfo[] = [];
  for (const name of fs.readdirSync(base).sort()) {
    const dir = path.join(base, name);
    // A directory itself, not a link: one could lead out of the root, or nowhere.
    if (!fs.lstatSync(dir).isDirectory()) continue;
    try {
      const m = readBackup(dir);
      out.push({ dir, created: m.created, node: m.node, cni: m.cni, bytes: size(dir), ok: true });
    } catch (e) {
      out.push({ dir, created: '', node: '', cni: [], bytes: size(dir), ok: false, error: (e as Error).message });
    }
  }
  return out;
}
