// The published JSON Schemas (schema/*.schema.json) as validators, for the tests that check what
// cni-sweep prints against them: the run report and doctor --json.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export interface PublishedSchema {
  /** The schema document as published. */
  file: Record<string, unknown>;
  validator: z.ZodType;
  /** What the document breaks, one `path: message` per issue; [] when it is valid. */
  issues: (doc: unknown) => string[];
}

export function publishedSchema(name: 'report' | 'doctor'): PublishedSchema {
  const file = JSON.parse(fs.readFileSync(path.join(__dirname, `../../schema/${name}.schema.json`), 'utf8')) as Record<string, unknown>;
  const validator = z.fromJSONSchema(file);
  return {
    file,
    validator,
    issues: (doc) => {
      const r = validator.safeParse(doc);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    },
  };
}
