/**
 * Numeric config fields changed by dotted path, for the benches' `--set` / `--base-set` flags:
 * `withField(cfg, 'model.memory.valueLr', 0.1)`; the result is validated again (parseTrainerConfig),
 * so a value the schema refuses fails with the field's name.
 */
import { UsageError } from '@mnemo/core';
import { type TrainerConfig, parseTrainerConfig } from '../src/index';

/** cfg with `field` (a dotted path, e.g. model.memory.valueLr) set to `value`, validated again */
export function withField(cfg: TrainerConfig, field: string, value: number, flag = '--set'): TrainerConfig {
  const copy = structuredClone(cfg) as unknown as Record<string, unknown>;
  const keys = field.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) throw new UsageError(`${flag}: ${field}: '${k}' is not a config section`, { flag });
    o = o[k] as Record<string, unknown>;
  }
  if (typeof o[keys.at(-1)!] !== 'number') throw new UsageError(`${flag}: ${field} is not a numeric config field`, { flag });
  o[keys.at(-1)!] = value;
  return parseTrainerConfig(copy);
}

/** `a.b=1,c.d=2` → cfg with each field set (one value per field); a malformed pair is refused by flag. */
export function withFields(cfg: TrainerConfig, text: string, flag: string): TrainerConfig {
  let out = cfg;
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [field, value, ...rest] = part.split('=');
    const x = Number(value);
    if (!field || rest.length || value === undefined || value === '' || !Number.isFinite(x))
      throw new UsageError(`${flag}: expected field=number,... (model.memory.topK=32), got '${part}'`, { flag });
    out = withField(out, field, x, flag);
  }
  return out;
}
