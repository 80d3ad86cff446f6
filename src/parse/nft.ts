// `nft -j list tables` / `nft -j list ruleset` output, and the table headers `nft list flowtables`
// prints: only the table list matters to us.
import { z } from 'zod';
import { ParseError } from './errors.js';

const Doc = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const Table = z.looseObject({ family: z.string(), name: z.string() });

export interface NftTable {
  family: string;
  name: string;
}

export function parseNftTables(text: string): NftTable[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ParseError(`unexpected nft -j output: ${(e as Error).message}`);
  }
  const doc = Doc.safeParse(json);
  if (!doc.success) throw new ParseError(`unexpected nft -j output: ${doc.error.issues[0]!.message}`);
  const out: NftTable[] = [];
  for (const item of doc.data.nftables) {
    if (!('table' in item)) continue;
    const t = Table.safeParse(item.table);
    if (!t.success) throw new ParseError(`unexpected nft -j table: ${t.error.issues[0]!.message}`);
    out.push({ family: t.data.family, name: t.data.name });
  }
  return out;
}

/**
 * The tables of `nft list flowtables` (`table FAMILY NAME {`, its flowtables indented by a tab,
 * `}`); null when a line has another form, and the answer cannot be relied on.
 */
export function parseTableHeaders(text: string): NftTable[] | null {
  const tables: NftTable[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line === '}' || line.startsWith('\t')) continue;
    const m = /^table (\S+) (.+) \{$/.exec(line);
    if (!m) return null;
    tables.push({ family: m[1]!, name: m[2]! });
  }
  return tables;
}
