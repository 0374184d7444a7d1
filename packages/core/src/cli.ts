/**
 * One command-line flag parser for every Mnemo CLI and script, on `node:util` parseArgs: a spec
 * names each flag with its type, description and default, and anything outside it is an error.
 *
 * - `--flag value` and `--flag=value` (and `-s value` for a flag with a `short` letter).
 * - A flag not in the spec throws UsageError `unknown flag --step; did you mean --steps?` (the
 *   closest known flag by edit distance, when one is close).
 * - Values: `string` as given (`choices` restricts it, `parse` turns it into anything else),
 *   `int` decimal digits with an optional sign, within `min`/`max`; `number` a decimal number;
 *   `list` comma-separated, items trimmed, none empty; `boolean` takes no value (`--reuse=1` is
 *   an error). A bad value throws UsageError naming the flag: `--seed: expected a non-negative
 *   integer, got '2.5'`.
 * - A separate value that looks like a flag (`--steps --seed 1`) is not taken: `--steps needs a
 *   value`. Negative numbers are values (`--shift -1`); write `--out=-x` for a string starting
 *   with a dash.
 * - A repeated flag: the last one wins (`--steps 1 --steps 2` is 2), as with most CLIs, so a
 *   flag appended to a wrapper's command line overrides the wrapper's.
 * - Positionals are an error (`unexpected argument 'x'`) unless `positionals: true`; after `--`
 *   everything is positional.
 * - `--help` / `-h` is always known: it sets `help` and skips the `required` checks.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors';

export { UsageError } from './errors';

interface FlagBase {
  /** what the flag does, for the help text */
  description: string;
  /** one letter: `-s` as well as the long form */
  short?: string;
  /** the value's name in the help text (`--out DIR`); by default N (int), X (number), VALUE, A,B,... (list) */
  placeholder?: string;
  /** the default in words, when it is not one literal value; the help text shows `(default: …)` */
  defaultText?: string;
  /** absent (and no --help): UsageError `--set is required` */
  required?: boolean;
}

export interface StringFlag extends FlagBase {
  type: 'string';
  default?: string;
  /** the only values accepted */
  choices?: readonly string[];
  /** turns the value (and a string default) into the flag's value; what it throws names the flag */
  parse?: (value: string) => unknown;
}
export interface BooleanFlag extends FlagBase {
  type: 'boolean';
  /** a boolean flag is false unless given */
  default?: never;
}
export interface IntFlag extends FlagBase {
  type: 'int';
  default?: number;
  min?: number;
  max?: number;
}
export interface NumberFlag extends FlagBase {
  type: 'number';
  default?: number;
  min?: number;
  max?: number;
}
export interface ListFlag extends FlagBase {
  type: 'list';
  default?: readonly string[];
}

export type FlagSpec = StringFlag | BooleanFlag | IntFlag | NumberFlag | ListFlag;
/** flag names (without the dashes) → their specs; `help` is built in */
export type FlagsSpec = Readonly<Record<string, FlagSpec>>;

/** the value of one flag when it is given */
export type FlagValue<F extends FlagSpec> = F extends { type: 'boolean' }
  ? boolean
  : F extends { type: 'int' | 'number' }
    ? number
    : F extends { type: 'list' }
      ? string[]
      : F extends { parse: (value: string) => infer R }
        ? R
        : F extends { choices: readonly (infer C extends string)[] }
          ? C
          : string;

/** every flag's value: booleans false when absent; flags without a default or `required` may be undefined */
export type FlagValues<S extends FlagsSpec> = {
  -readonly [K in keyof S]: S[K] extends { type: 'boolean' }
    ? boolean
    : S[K] extends { default: string | number | readonly string[] } | { required: true }
      ? FlagValue<S[K]>
      : FlagValue<S[K]> | undefined;
};

export interface ParsedArgs<S extends FlagsSpec> {
  values: FlagValues<S>;
  /** the arguments that are not flags, in order */
  positionals: string[];
  /** --help or -h was given */
  help: boolean;
}

export interface ParseOptions {
  /** accept arguments that are not flags (default: they are an error) */
  positionals?: boolean;
}

/** The spec as given, with its literal types kept (so `parseFlags` can type the values). */
export function defineFlags<const S extends FlagsSpec>(spec: S): S {
  return spec;
}

const PLACEHOLDER = { string: 'VALUE', int: 'N', number: 'X', list: 'A,B,...' } as const;

/** Parse `argv` (without the node and script paths) against `spec`; throws UsageError. */
export function parseFlags<const S extends FlagsSpec>(spec: S, argv: readonly string[], opts: ParseOptions = {}): ParsedArgs<S> {
  const shortOf = checkSpec(spec);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, f] of Object.entries(spec)) {
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string', ...(f.short ? { short: f.short } : {}) };
  }
  // strict: false so that every unknown flag and bad value gets this parser's message (naming the
  // flag, with a suggestion); the strict checks are the loop below
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let help = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      if (!opts.positionals) throw new UsageError(`unexpected argument '${t.value}'`);
      positionals.push(t.value);
      continue;
    }
    const isShort = !t.rawName.startsWith('--');
    const known = isShort ? shortOf.get(t.rawName.slice(1)) === t.name : Object.hasOwn(options, t.name);
    if (!known) throw unknownFlag(t.rawName, t.name, isShort ? argv[t.index]! : undefined, Object.keys(options));
    const flag = `--${t.name}`;
    const f: FlagSpec = t.name === 'help' ? { type: 'boolean', description: '' } : spec[t.name]!;
    if (f.type === 'boolean') {
      if (t.value !== undefined) throw new UsageError(`${flag} takes no value, got '${t.value}'`, { flag });
      if (t.name === 'help') help = true;
      else values[t.name] = true;
      continue;
    }
    if (t.value === undefined || (!t.inlineValue && looksLikeFlag(t.value))) throw new UsageError(`${flag} needs a value`, { flag });
    values[t.name] = convert(flag, f, t.value);
  }
  for (const [name, f] of Object.entries(spec)) {
    if (values[name] !== undefined) continue;
    if (f.type === 'boolean') values[name] = false;
    else if (f.default !== undefined) {
      values[name] = f.type === 'list' ? [...f.default] : f.type === 'string' && f.parse ? convert(`--${name}`, f, f.default) : f.default;
    } else if (f.required && !help) throw new UsageError(`--${name} is required`, { flag: `--${name}` });
  }
  return { values: values as FlagValues<S>, positionals, help };
}

/**
 * The flag lines of a help text: every flag with its placeholder, description and default, one
 * per line, descriptions aligned, `-h, --help` last.
 */
export function usage(spec: FlagsSpec, opts: { help?: string } = {}): string {
  checkSpec(spec);
  const rows: [string, string][] = Object.entries(spec).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'boolean' ? '' : ` ${f.placeholder ?? PLACEHOLDER[f.type]}`}`;
    let right = f.description + (f.required ? ' (required)' : '');
    if (f.defaultText !== undefined) right += ` (default: ${f.defaultText})`;
    else if (f.default !== undefined) right += ` (default ${Array.isArray(f.default) ? f.default.join(',') : String(f.default)})`;
    return [left, right];
  });
  rows.push(['-h, --help', opts.help ?? 'this text']);
  const width = Math.max(...rows.map(([l]) => l.length)) + 4;
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${r.replaceAll('\n', `\n  ${' '.repeat(width)}`)}`).join('\n');
}

export interface CliInfo extends ParseOptions {
  /** the program's name, prefixed to error messages (`mnemo-train`, `trainer bench`) */
  name: string;
  /** the usage line(s) printed above the flags by --help, and under an error */
  synopsis: string;
  /** default: process.argv.slice(2) */
  argv?: readonly string[];
}

/**
 * `parseFlags` for scripts: --help prints the synopsis and the flags on stdout and exits 0; a
 * UsageError prints `name: message` and the synopsis on stderr and exits 2.
 */
export function parseArgvOrExit<const S extends FlagsSpec>(spec: S, cli: CliInfo): ParsedArgs<S> {
  let parsed: ParsedArgs<S>;
  try {
    parsed = parseFlags(spec, cli.argv ?? process.argv.slice(2), cli);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${cli.name}: ${e.message}\n${cli.synopsis}\n(--help lists every flag)\n`);
    return process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(`${cli.synopsis}\n\nflags:\n${usage(spec)}\n`);
    return process.exit(0);
  }
  return parsed;
}

/** Programmer errors in a spec (plain Errors); returns short letter → flag name. */
function checkSpec(spec: FlagsSpec): Map<string, string> {
  const shortOf = new Map<string, string>([['h', 'help']]);
  for (const [name, f] of Object.entries(spec)) {
    if (name === 'help') throw new Error('flag spec: --help is built in');
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(name)) throw new Error(`flag spec: bad flag name '${name}'`);
    if (f.short !== undefined) {
      if (!/^[A-Za-z]$/.test(f.short)) throw new Error(`flag spec: --${name}: short must be one letter, got '${f.short}'`);
      if (shortOf.has(f.short)) throw new Error(`flag spec: -${f.short} is both --${shortOf.get(f.short)} and --${name}`);
      shortOf.set(f.short, name);
    }
  }
  return shortOf;
}

/** `--x`, `-x`: a flag, not a value; `-1`, `-.5`, `-` are values */
function looksLikeFlag(v: string): boolean {
  return /^-(-|[^\d.])/.test(v);
}

function expected(kind: 'an integer' | 'a number', f: { min?: number; max?: number }): string {
  const { min, max } = f;
  if (kind === 'an integer' && max === undefined && (min === 0 || min === 1)) {
    return min === 0 ? 'a non-negative integer' : 'a positive integer';
  }
  if (min !== undefined && max !== undefined) return `${kind} in [${min}, ${max}]`;
  if (min !== undefined) return `${kind} ≥ ${min}`;
  if (max !== undefined) return `${kind} ≤ ${max}`;
  return kind;
}

function convert(flag: string, f: Exclude<FlagSpec, BooleanFlag>, raw: string): unknown {
  const bad = (what: string) => new UsageError(`${flag}: expected ${what}, got '${raw}'`, { flag });
  const inRange = (n: number, g: { min?: number; max?: number }) =>
    (g.min === undefined || n >= g.min) && (g.max === undefined || n <= g.max);
  switch (f.type) {
    case 'string': {
      if (f.choices && !f.choices.includes(raw)) throw bad(`one of ${f.choices.join('|')}`);
      if (!f.parse) return raw;
      try {
        return f.parse(raw);
      } catch (e) {
        if (e instanceof UsageError) throw e;
        const msg = (e as Error).message ?? String(e);
        throw new UsageError(msg.startsWith(flag) ? msg : `${flag}: ${msg}`, { flag, cause: e });
      }
    }
    case 'int': {
      const n = /^[+-]?\d+$/.test(raw) ? Number(raw) + 0 : Number.NaN; // + 0: no -0
      if (!Number.isSafeInteger(n) || !inRange(n, f)) throw bad(expected('an integer', f));
      return n;
    }
    case 'number': {
      const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) + 0 : Number.NaN;
      if (!Number.isFinite(n) || !inRange(n, f)) throw bad(expected('a number', f));
      return n;
    }
    case 'list': {
      const items = raw.split(',').map((s) => s.trim());
      if (items.some((s) => s === '')) throw bad('a comma-separated list like a,b,c');
      return items;
    }
  }
}

/** `unknown flag --stpes; did you mean --steps?` */
function unknownFlag(rawName: string, name: string, word: string | undefined, known: string[]): UsageError {
  // `-steps` (one dash) reaches here as the short flag -s: name the whole word, suggest a long flag
  const dashWord = word !== undefined && /^-[A-Za-z][\w-]+$/.test(word) ? word : undefined;
  const shown = dashWord ?? rawName;
  const target = dashWord ? dashWord.slice(1) : rawName.startsWith('--') ? name : undefined;
  const near = target === undefined ? undefined : closest(target, known);
  return new UsageError(`unknown flag ${shown}${near ? `; did you mean --${near}?` : ''}`);
}

/** the known name closest to `name` by edit distance, if it is close (or `name` is a prefix of it alone) */
function closest(name: string, known: string[]): string | undefined {
  const n = name.toLowerCase();
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = editDistance(n, k.toLowerCase());
    if (d <= Math.max(1, Math.floor(Math.max(n.length, k.length) * 0.4)) && d < bestD) {
      best = k;
      bestD = d;
    }
  }
  if (best === undefined && n.length >= 2) {
    const prefixed = known.filter((k) => k.toLowerCase().startsWith(n));
    if (prefixed.length === 1) best = prefixed[0];
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions (optimal string alignment): `stpes` → `steps` is 1 */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
