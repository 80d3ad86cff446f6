// BPF state an eBPF CNI leaves on the node after its agent is gone: programs attached to host
// devices by tc (bpf filters on a clsact qdisc) and by XDP, recognised by the program's name as the
// kernel keeps it, and pinned maps, programs and links below the bpffs mount. A pinned object lives
// in the kernel: it cannot be backed up or put back, only recorded (the plan and the manifest).
import { underRoot } from '../host/host.js';
import { listLinks } from '../inspect.js';
import { ownedLinks } from '../ownership.js';
import { ParseError } from '../parse/errors.js';
import { parseFilters, parseQdiscs, xdpPrograms, type Filter } from '../parse/tc.js';
import { batchSafeDevice, isPathComponent } from '../util/names.js';
import type { Ctx, Phase, PlannedStep } from './types.js';
import { nothing } from './types.js';
import { plural } from '../util/plural.js';

/** XDP_ATTACHED_* (the `mode` ip prints) and the word `ip link set` takes to detach that mode. */
const XDP_OFF: Record<number, string> = { 1: 'xdpdrv', 2: 'xdpgeneric', 3: 'xdpoffload' };
const XDP_MODE_NAME: Record<number, string> = { 1: 'driver', 2: 'generic', 3: 'offload' };

export const FINDMNT_BPF = ['findmnt', '-J', '-t', 'bpf', '-o', 'TARGET'];
export const PINS_NOT_RESTORABLE =
  'pinned BPF objects are not backed up and `restore` cannot put them back: their contents live in the kernel (the CNI agent creates them again when it starts); the backup manifest lists them';

/** A glob component (`cilium_*`) as an anchored regex: `*` and `?` never cross a `/`. */
function globComponent(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/** The bpffs mounts, as node paths: from findmnt (the kernel's mount table), those under --root. */
async function bpffsMounts(ctx: Ctx, notes: string[]): Promise<string[] | null> {
  ctx.gaps.saw('bpffs mounts');
  const r = await ctx.host.query(FINDMNT_BPF);
  if (!r) {
    notes.push('findmnt is not installed: bpffs pins not checked');
    return null;
  }
  // findmnt exits 1 when nothing matches: no bpffs, no pins.
  if (r.code !== 0 && r.stdout.trim() === '') return [];
  let targets: string[];
  try {
    const json = JSON.parse(r.stdout) as { filesystems?: Array<{ target?: unknown }> };
    targets = (json.filesystems ?? []).map((f) => f.target).filter((t): t is string => typeof t === 'string');
  } catch (e) {
    ctx.gaps.add('findmnt -t bpf', e);
    return null;
  }
  const root = ctx.host.root.replace(/\/+$/, '');
  const out: string[] = [];
  for (const t of targets) {
    const node = root === '' ? t : t === root ? '/' : t.startsWith(`${root}/`) ? t.slice(root.length) : null;
    if (
      node === null ||
      node === '/' ||
      node
        .split('/')
        .slice(1)
        .some((c) => !isPathComponent(c))
    )
      continue;
    if (!out.includes(node)) out.push(node);
  }
  return out;
}

/** Pins below a bpffs mount that match a profile's pin glob; directories above them are never symlinks. */
async function matchPins(ctx: Ctx, mount: string, glob: string): Promise<string[]> {
  let dirs = [mount];
  const parts = glob.split('/');
  for (let i = 0; i < parts.length; i++) {
    const re = globComponent(parts[i]!);
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const d of dirs) {
      for (const e of (await ctx.host.readDir(d)) ?? []) {
        if (!isPathComponent(e.name) || !re.test(e.name)) continue;
        if (!last && e.type !== 'dir') continue;
        next.push(`${d}/${e.name}`);
      }
    }
    dirs = next;
  }
  return dirs;
}

interface TcPlan {
  lines: string[];
  items: string[];
  notes: string[];
}

/**
 * The CNI's bpf filters on one device's clsact (or ingress) qdisc, and the qdisc itself when every
 * filter on it is the CNI's. A classifier instance (a preference) is the CNI's only when each filter
 * in it runs one of its programs; the others, and the qdisc they sit on, stay.
 */
async function planTc(ctx: Ctx, dev: string, kind: string, ours: (f: Filter) => boolean, out: TcPlan): Promise<void> {
  const dirs = kind === 'clsact' ? ['ingress', 'egress'] : ['ingress'];
  let foreign = 0;
  let mine = 0;
  for (const dir of dirs) {
    const r = await ctx.host.query(['tc', '-j', 'filter', 'show', 'dev', dev, dir]);
    if (!r || r.code !== 0) {
      ctx.gaps.add(`tc -j filter show dev ${dev} ${dir}`, r ? r.stderr.trim() || `exit ${r.code}` : 'tc not installed');
      out.notes.push(`kept the ${kind} qdisc of ${dev} and its filters: its ${dir} filters could not be read`);
      return;
    }
    let entries: Filter[];
    try {
      entries = parseFilters(r.stdout);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      ctx.gaps.add(`tc -j filter show dev ${dev} ${dir}`, e);
      out.notes.push(`kept the ${kind} qdisc of ${dev} and its filters: its ${dir} filters could not be read`);
      return;
    }
    // One classifier instance per chain and preference (the kernel allows one protocol per preference).
    const groups = new Map<string, Filter[]>();
    for (const f of entries) {
      const key = `${f.chain ?? 0}/${f.pref}`;
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    for (const g of groups.values()) {
      const filters = g.filter((f) => f.options !== undefined);
      const isMine = (f: Filter) => f.kind === 'bpf' && /^(0x)?[0-9a-f]+$/i.test(f.options?.handle ?? '') && ours(f);
      if (!filters.length || !filters.every(isMine)) {
        foreign++;
        const names = filters.map((f) => (f.kind === 'bpf' ? `bpf ${f.options?.prog?.name ?? 'without a program name'}` : f.kind));
        if (filters.some(isMine))
          out.notes.push(
            `kept ${dev} ${dir} pref ${g[0]!.pref}: it also holds filters that are not the CNI's (${[...new Set(names)].join(', ')})`,
          );
        continue;
      }
      for (const f of filters) {
        const chain = f.chain ? ` chain ${f.chain}` : '';
        out.lines.push(`filter del dev ${dev} ${dir} pref ${f.pref}${chain} handle ${f.options!.handle!} bpf`);
        out.items.push(
          `tc filter ${dev} ${dir} pref ${f.pref}${chain} handle ${f.options!.handle!} (${f.options!.prog?.name || f.options!.bpf_name})`,
        );
        mine++;
      }
    }
  }
  if (!mine) return;
  if (kind !== 'clsact') out.notes.push(`kept the ${kind} qdisc of ${dev}: only a clsact qdisc the CNI's filters alone use is removed`);
  else if (foreign)
    out.notes.push(
      `kept the clsact qdisc of ${dev}: ${plural(foreign, 'filter preference')} on it ${foreign === 1 ? 'is' : 'are'} not the CNI's`,
    );
  else {
    out.lines.push(`qdisc del dev ${dev} clsact`);
    out.items.push(`clsact qdisc of ${dev}`);
  }
}

export const bpf: Phase = {
  name: 'bpf',
  summary: "detach the CNI's BPF programs from host devices (tc filters, clsact qdiscs, XDP) and remove its bpffs pins",
  cleanup: true,
  // Its programs and pins are in the kernel and on bpffs, none under a state path cni-state removes
  // (preflight refuses a run whose removed tree holds a mount, Cilium's bpffs fallback
  // /run/cilium/bpffs included): it runs beside cni-state, so that the links need not wait for it.
  after: ['cni-config'],
  async plan(ctx) {
    const specs = ctx.snapshot.facts.map((f) => f.profile.bpf);
    const names = new Set(specs.flatMap((b) => b.programNames));
    const patterns = specs.flatMap((b) => b.programPatterns).map((r) => new RegExp(r));
    const filterNames = specs.flatMap((b) => b.filterNamePatterns).map((r) => new RegExp(r));
    const globs = [...new Set(specs.flatMap((b) => b.pins))];
    if (!names.size && !patterns.length && !filterNames.length && !globs.length) return nothing();
    const ours = (name?: string) => name !== undefined && name !== '' && (names.has(name) || patterns.some((r) => r.test(name)));
    const notes: string[] = [];
    // In this order. tc filters before the pins: removing the last pin of a tail-call map (a prog
    // array) empties it, and a program still attached would drop every packet (Cilium's own cleanup
    // orders it so). Pins before XDP: a pinned bpf_link (XDP or tcx through a link) holds its program
    // until the pin goes, and `ip link set ... xdp off` refuses a link-held program (EBUSY); after
    // the pin it detaches nothing and succeeds. Pins go in the profile's order: links before maps.
    let tcStep: PlannedStep | undefined;
    let pinStep: PlannedStep | undefined;
    let xdpStep: PlannedStep | undefined;

    if (globs.length) {
      const pins: string[] = [];
      const listed = new Set<string>(); // the pins in `pins`: tc/globals/cilium_* holds maps per endpoint, hundreds on a full node
      for (const mount of (await bpffsMounts(ctx, notes)) ?? []) {
        for (const glob of globs)
          for (const p of await matchPins(ctx, mount, glob))
            if (!listed.has(p)) {
              listed.add(p);
              pins.push(p);
            }
      }
      if (pins.length) {
        notes.push(PINS_NOT_RESTORABLE);
        pinStep = {
          argv: ['rm', '-rf', '--', ...pins.map((p) => underRoot(ctx.host.root, p))],
          removes: { kind: 'BPF pin', items: pins },
        };
      }
    }

    if (names.size || patterns.length || filterNames.length) {
      const links = await listLinks(ctx.host, ctx.gaps);
      // The interfaces phase deletes the CNI's own devices (pod veths, cilium_host): what is attached goes with them.
      const dying = ctx.selected.has('interfaces')
        ? new Set(
            ownedLinks(links, ctx.snapshot.facts)
              .filter((l) => !l.kernelOwned)
              .map((l) => l.name),
          )
        : new Set<string>();
      const tc: TcPlan = { lines: [], items: [], notes: [] };
      ctx.gaps.saw('tc qdiscs');
      const q = await ctx.host.query(['tc', '-j', 'qdisc', 'show']);
      if (!q) notes.push('tc is not installed: tc filters not checked');
      else if (q.code !== 0) ctx.gaps.add('tc -j qdisc show', q.stderr.trim() || `exit ${q.code}`);
      else {
        let qdiscs: ReturnType<typeof parseQdiscs> = [];
        try {
          qdiscs = parseQdiscs(q.stdout);
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
          ctx.gaps.add('tc -j qdisc show', e);
        }
        for (const qd of qdiscs) {
          if ((qd.kind !== 'clsact' && qd.kind !== 'ingress') || dying.has(qd.dev)) continue;
          if (!batchSafeDevice(qd.dev)) {
            notes.push(`left alone: the ${qd.kind} qdisc of ${JSON.stringify(qd.dev)}: a device name tc -batch cannot take as one word`);
            continue;
          }
          await planTc(
            ctx,
            qd.dev,
            qd.kind,
            (f) => ours(f.options?.prog?.name) || filterNames.some((r) => r.test(f.options?.bpf_name ?? '')),
            tc,
          );
        }
      }
      notes.push(...tc.notes);
      if (tc.lines.length)
        tcStep = {
          argv: ['tc', '-batch', '-'],
          stdin: tc.lines.join('\n') + '\n',
          removes: { kind: 'BPF attachment', items: tc.items },
        };

      const xdpLines: string[] = [];
      const xdpItems: string[] = [];
      for (const l of links) {
        if (dying.has(l.ifname)) continue;
        let progs: ReturnType<typeof xdpPrograms>;
        try {
          progs = xdpPrograms(l);
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
          ctx.gaps.add(`ip -j -d link show ${l.ifname}`, e);
          continue;
        }
        for (const p of progs) {
          if (!ours(p.name)) continue;
          const off = XDP_OFF[p.mode];
          if (!off || !batchSafeDevice(l.ifname)) {
            notes.push(`left alone: XDP program ${p.name!} on ${JSON.stringify(l.ifname)} (attach mode ${p.mode})`);
            continue;
          }
          xdpLines.push(`link set dev ${l.ifname} ${off} off`);
          xdpItems.push(`XDP ${l.ifname} ${XDP_MODE_NAME[p.mode]!} (${p.name!})`);
        }
      }
      if (xdpLines.length)
        xdpStep = {
          argv: ['ip', '-batch', '-'],
          stdin: xdpLines.join('\n') + '\n',
          removes: { kind: 'BPF attachment', items: xdpItems },
        };
      // bpftool would show these; tc and ip do not. A pinned link goes with its pin above.
      notes.push('tcx and netkit attachments (BPF links) are not listed by tc or ip: only those pinned in the pins above are removed');
    }
    const steps = [tcStep, pinStep, xdpStep].filter((s): s is PlannedStep => s !== undefined);
    if (!steps.length) return nothing(...notes);
    return { steps, notes };
  },
};
