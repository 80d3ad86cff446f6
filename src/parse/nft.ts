// `nft -j list tables` / `nft -j list ruleset` output: only the table list matters to us.
import { z } from 'zod';

const Doc = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const Table = z.looseObject({ family: z.string(), name: z.string() });

export interface NftTable {
  family: string;
  name: string;
}

export function parseNftTables(text: string): NftTable[] {
  const doc = Doc.parse(JSON.parse(text));
  const out: NftTable[] = [];
  for (const item of doc.nftables) {
    if (!('table' in item)) continue;
    const t = Table.parse(item.table);
    out.push({ family: t.family, name: t.name });
  }
  return out;
}
