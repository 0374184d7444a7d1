/**
 * `mnemo-train --help`'s config section: every field of the trainer config with its type and
 * default, read off the zod schema itself (so the list cannot drift from what is validated).
 */
import type { z } from 'zod';
import { trainerConfigSchema } from './config';

interface Def {
  type: string;
  defaultValue?: unknown;
  innerType?: { _zod: { def: Def } };
  shape?: Record<string, { _zod: { def: Def } }>;
  entries?: Record<string, string>;
  element?: { _zod: { def: Def } };
}

const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

/** fields whose default the schema cannot show (computed elsewhere); listed as one line */
const NOTES: Record<string, { type: string; default: string }> = {
  model: { type: 'object', default: '(required: a @mnemo/model config without vocabSize)' },
  'data.path': { type: 'string', default: '(unset: the bundled Moby Dick)' },
  'data.maxChars': { type: 'number', default: '(unset: all of data.path, warned when cut; the bundled Moby Dick: 400000)' },
  chatTemplate: {
    type: 'object',
    default: '(unset: "User: {content}\\n" / "Assistant: {content}\\n", generation "Assistant:", stop ["\\nUser:"])',
  },
};

/** One line per leaf field: `data.maxChars  int (optional)  default: …`. */
export function configFields(
  schema: z.ZodType = trainerConfigSchema,
  prefix = '',
): Array<{ field: string; type: string; default: string }> {
  const out: Array<{ field: string; type: string; default: string }> = [];
  const note = NOTES[prefix];
  if (note) return [{ field: prefix, ...note }];
  let def = defOf(schema);
  let dflt: string | undefined;
  let optional = false;
  for (;;) {
    if (def.type === 'default') dflt ??= JSON.stringify(def.defaultValue);
    else if (def.type === 'optional') optional = true;
    else break;
    def = defOf(def.innerType);
  }
  if (def.type === 'object' && def.shape) {
    for (const [k, v] of Object.entries(def.shape)) out.push(...configFields(v as unknown as z.ZodType, prefix ? `${prefix}.${k}` : k));
    return out;
  }
  const type =
    def.type === 'enum'
      ? Object.values(def.entries ?? {}).join('|')
      : def.type === 'record'
        ? 'object'
        : def.type === 'array'
          ? `${defOf(def.element).type}[]`
          : def.type;
  out.push({ field: prefix, type, default: dflt ?? (optional ? '(unset)' : '(required)') });
  return out;
}

export function configHelp(): string {
  const rows = configFields();
  const w = Math.max(...rows.map((r) => r.field.length));
  const t = Math.max(...rows.map((r) => r.type.length));
  return rows.map((r) => `  ${r.field.padEnd(w)}  ${r.type.padEnd(t)}  default ${r.default}`).join('\n');
}
