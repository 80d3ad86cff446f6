// Reads a tar archive's members without extracting anything: what `restore` checks against the
// manifest before tar writes a byte, and what the backup records once files.tar is written.
// ustar, with GNU long names ('L', 'K') and pax headers ('x'), which is what GNU tar writes.
import { sha256 } from '../util/lazy.js';

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

export interface TarMember {
  /** As stored, without a trailing slash. */
  name: string;
  type: TarType;
  size: number;
  /** Regular files only. */
  sha256?: string;
  /** Symlink or hard link target. */
  link?: string;
}

export class TarError extends Error {}

const BLOCK = 512;

function text(h: Buffer, at: number, len: number): string {
  const field = h.subarray(at, at + len);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? len : end).toString('utf8');
}

function number(h: Buffer, at: number, len: number): number {
  // GNU base-256 for values too large for octal: high bit of the first byte set.
  if (h[at]! & 0x80) {
    let n = h[at]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + h[at + i]!;
    return n;
  }
  const s = text(h, at, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad number field "${s}"`);
  return parseInt(s, 8);
}

function pax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(data.subarray(off, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length) throw new TarError('bad pax header');
    const rec = data.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

const TYPES: Record<string, TarType> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** The header's byte sum, its checksum field counted as spaces. Two plain loops: this runs cold, once per member. */
function checksum(h: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < BLOCK; i++) sum += h[i]!;
  return sum;
}

export function tarMembers(buf: Buffer): TarMember[] {
  const out: TarMember[] = [];
  let off = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let ext: Record<string, string> = {};
  for (;;) {
    if (off + BLOCK > buf.length) throw new TarError('truncated: no end-of-archive marker');
    const h = buf.subarray(off, off + BLOCK);
    if (h.equals(ZERO_BLOCK)) return out;
    if (checksum(h) !== number(h, 148, 8)) throw new TarError(`header checksum mismatch at offset ${off}`);
    const flag = String.fromCharCode(h[156]!);
    const size = ext.size !== undefined ? Number(ext.size) : number(h, 124, 12);
    const start = off + BLOCK;
    if (start + size > buf.length) throw new TarError('truncated member data');
    const data = buf.subarray(start, start + size);
    off = start + Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'L' || flag === 'K') {
      const s = data.toString('utf8').replace(/\0.*$/s, '');
      if (flag === 'L') longName = s;
      else longLink = s;
      continue;
    }
    if (flag === 'x') {
      ext = { ...ext, ...pax(data) };
      continue;
    }
    if (flag === 'g') continue;
    const magic = text(h, 257, 6);
    const prefix = magic.startsWith('ustar') ? text(h, 345, 155) : '';
    const raw = ext.path ?? longName ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
    const type = TYPES[flag] ?? 'other';
    const m: TarMember = { name: raw.replace(/\/+$/, ''), type, size: type === 'file' ? size : 0 };
    if (type === 'file') m.sha256 = sha256(data);
    if (type === 'symlink' || type === 'hardlink') m.link = ext.linkpath ?? longLink ?? text(h, 157, 100);
    out.push(m);
    longName = longLink = undefined;
    ext = {};
  }
}
