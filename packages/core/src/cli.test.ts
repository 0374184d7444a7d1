import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { MnemoError, UsageError, defineFlags, parseArgvOrExit, parseFlags, usage } from './index';

const SPEC = defineFlags({
  steps: { type: 'int', min: 0, description: 'training steps' },
  seed: { type: 'int', min: 0, placeholder: 'S', default: 7, description: 'model init seed' },
  shift: { type: 'int', description: 'an offset, any sign' },
  jobs: { type: 'int', min: 1, default: 2, description: 'runs at a time' },
  port: { type: 'int', min: 0, max: 65535, default: 8080, description: 'TCP port' },
  lr: { type: 'number', min: 0, description: 'learning rate' },
  out: { type: 'string', placeholder: 'DIR', description: 'run directory', defaultText: "the config's out" },
  level: { type: 'string', choices: ['warn', 'info'], default: 'warn', description: 'log level' },
  names: { type: 'list', default: ['dense', 'moe'], description: 'models to train' },
  reuse: { type: 'boolean', short: 'r', description: 'read finished runs back' },
  'eval-qa': { type: 'string', placeholder: 'FILE', description: 'questions' },
});

/** the UsageError that `fn` throws */
function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect(e).toBeInstanceOf(MnemoError);
    return e as UsageError;
  }
  throw new Error('no error thrown');
}

const parse = (...argv: string[]) => parseFlags(SPEC, argv);

describe('parseFlags', () => {
  it('types the values: defaults filled in, booleans false, the rest undefined when absent', () => {
    const { values, positionals, help } = parse();
    expect(values).toEqual({
      steps: undefined,
      seed: 7,
      shift: undefined,
      jobs: 2,
      port: 8080,
      lr: undefined,
      out: undefined,
      level: 'warn',
      names: ['dense', 'moe'],
      reuse: false,
      'eval-qa': undefined,
    });
    expect(positionals).toEqual([]);
    expect(help).toBe(false);
    expectTypeOf(values.steps).toEqualTypeOf<number | undefined>();
    expectTypeOf(values.seed).toEqualTypeOf<number>();
    expectTypeOf(values.level).toEqualTypeOf<'warn' | 'info'>();
    expectTypeOf(values.names).toEqualTypeOf<string[]>();
    expectTypeOf(values.reuse).toEqualTypeOf<boolean>();
    expectTypeOf(values.out).toEqualTypeOf<string | undefined>();
  });

  it('the default list is a copy', () => {
    parse().values.names.push('x');
    expect(parse().values.names).toEqual(['dense', 'moe']);
  });

  it('an unknown flag names itself and suggests the closest known flag', () => {
    const cases: Array<[string[], string]> = [
      [['--step', '3'], 'unknown flag --step; did you mean --steps?'],
      [['--stpes', '3'], 'unknown flag --stpes; did you mean --steps?'], // transposition: distance 1
      [['--seeds', '1'], 'unknown flag --seeds; did you mean --seed?'],
      [['--eval-q=x'], 'unknown flag --eval-q; did you mean --eval-qa?'],
      [['--Steps', '3'], 'unknown flag --Steps; did you mean --steps?'],
      [['--hlep'], 'unknown flag --hlep; did you mean --help?'],
      [['-steps', '3'], 'unknown flag -steps; did you mean --steps?'], // one dash
      [['--bogus'], 'unknown flag --bogus'], // nothing close: no suggestion
      [['-x'], 'unknown flag -x'],
      [['--reuse', '--nmaes', 'a'], 'unknown flag --nmaes; did you mean --names?'],
    ];
    for (const [argv, msg] of cases) {
      const e = usageError(() => parse(...argv));
      expect(e.message, argv.join(' ')).toBe(msg);
      expect(e.flag).toBeUndefined();
    }
  });

  it('accepts --flag value and --flag=value alike', () => {
    expect(parse('--steps', '30').values.steps).toBe(30);
    expect(parse('--steps=30').values.steps).toBe(30);
    expect(parse('--out=runs/a', '--eval-qa', 'qa.jsonl').values).toMatchObject({ out: 'runs/a', 'eval-qa': 'qa.jsonl' });
    expect(parse('--out=a=b').values.out).toBe('a=b'); // only the first = splits
    expect(parse('--out=-odd').values.out).toBe('-odd'); // = form: a value may start with a dash
    expect(parse('--out=').values.out).toBe('');
    expect(parse('--names=memory,memoryPlus').values.names).toEqual(['memory', 'memoryPlus']);
  });

  it('a missing value names the flag', () => {
    for (const argv of [['--steps'], ['--steps', '--seed', '1'], ['--out', '-r'], ['--steps', '--']]) {
      const e = usageError(() => parse(...argv));
      expect(e.message, argv.join(' ')).toBe(`${argv[0]} needs a value`);
      expect(e.flag).toBe(argv[0]);
    }
  });

  it('int flags take integers in range only, and say which flag and what it expects', () => {
    expect(parse('--seed', '0').values.seed).toBe(0);
    expect(parse('--seed', '+12').values.seed).toBe(12);
    expect(parse('--shift', '-1').values.shift).toBe(-1); // a negative number is a value, not a flag
    expect(parse('--port', '65535').values.port).toBe(65535);
    const cases: Array<[string[], string]> = [
      [['--seed', '2.5'], "--seed: expected a non-negative integer, got '2.5'"],
      [['--seed', '-1'], "--seed: expected a non-negative integer, got '-1'"],
      [['--seed', 'x'], "--seed: expected a non-negative integer, got 'x'"],
      [['--seed', '1e3'], "--seed: expected a non-negative integer, got '1e3'"],
      [['--seed', '0x10'], "--seed: expected a non-negative integer, got '0x10'"],
      [['--seed='], "--seed: expected a non-negative integer, got ''"],
      [['--seed', '99999999999999999999'], "--seed: expected a non-negative integer, got '99999999999999999999'"],
      [['--jobs', '0'], "--jobs: expected a positive integer, got '0'"],
      [['--port', '70000'], "--port: expected an integer in [0, 65535], got '70000'"],
      [['--shift', '1.5'], "--shift: expected an integer, got '1.5'"],
    ];
    for (const [argv, msg] of cases) {
      const e = usageError(() => parse(...argv));
      expect(e.message, argv.join(' ')).toBe(msg);
      expect(e.flag).toBe(argv[0]!.split('=')[0]);
    }
  });

  it('number, choice and list flags check their values', () => {
    expect(parse('--lr', '1e-3').values.lr).toBe(0.001);
    expect(parse('--lr=.5').values.lr).toBe(0.5);
    expect(usageError(() => parse('--lr', 'fast')).message).toBe("--lr: expected a number ≥ 0, got 'fast'");
    expect(usageError(() => parse('--lr', '-0.1')).message).toBe("--lr: expected a number ≥ 0, got '-0.1'");
    expect(usageError(() => parse('--lr', 'Infinity')).message).toBe("--lr: expected a number ≥ 0, got 'Infinity'");
    expect(parse('--level', 'info').values.level).toBe('info');
    expect(usageError(() => parse('--level', 'loud')).message).toBe("--level: expected one of warn|info, got 'loud'");
    expect(parse('--names', ' a , b ').values.names).toEqual(['a', 'b']);
    expect(usageError(() => parse('--names', 'a,,b')).message).toBe("--names: expected a comma-separated list like a,b,c, got 'a,,b'");
  });

  it('booleans take no value; a short letter works too', () => {
    expect(parse('--reuse').values.reuse).toBe(true);
    expect(parse('-r').values.reuse).toBe(true);
    expect(parse('-r', '--steps', '3').values).toMatchObject({ reuse: true, steps: 3 });
    const e = usageError(() => parse('--reuse=yes'));
    expect(e.message).toBe("--reuse takes no value, got 'yes'");
    expect(e.flag).toBe('--reuse');
    // a short letter not in the spec is unknown even when a long flag has that name
    const x = defineFlags({ x: { type: 'boolean', description: 'x' } });
    expect(parseFlags(x, ['--x']).values.x).toBe(true);
    expect(usageError(() => parseFlags(x, ['-x'])).message).toBe('unknown flag -x');
  });

  it('a repeated flag: the last one wins', () => {
    expect(parse('--steps', '1', '--steps', '2').values.steps).toBe(2);
    expect(parse('--steps=1', '--steps', '2', '--steps=3').values.steps).toBe(3);
    expect(parse('--names', 'a', '--names', 'b').values.names).toEqual(['b']);
  });

  it('positionals are an error unless allowed; then they come back in order, -- ends the flags', () => {
    const e = usageError(() => parse('--steps', '3', 'extra'));
    expect(e.message).toBe("unexpected argument 'extra'");
    expect(e.flag).toBeUndefined();
    const p = parseFlags(SPEC, ['compare', '--steps', '3', 'dense', '--', '--steps', 'moe'], { positionals: true });
    expect(p.positionals).toEqual(['compare', 'dense', '--steps', 'moe']);
    expect(p.values.steps).toBe(3);
  });

  it('--help and -h set help, even next to other flags; unknown flags are still errors', () => {
    expect(parse('--help').help).toBe(true);
    expect(parse('-h').help).toBe(true);
    expect(parse('--steps', '3', '-h').help).toBe(true);
    expect(usageError(() => parse('--help', '--stpes', '1')).message).toBe('unknown flag --stpes; did you mean --steps?');
  });

  it('required flags: missing is an error naming the flag, except with --help', () => {
    const spec = defineFlags({ set: { type: 'string', required: true, description: 'field=v1,v2' } });
    expectTypeOf(parseFlags(spec, ['--set', 'a=1']).values.set).toEqualTypeOf<string>();
    const e = usageError(() => parseFlags(spec, []));
    expect(e.message).toBe('--set is required');
    expect(e.flag).toBe('--set');
    expect(parseFlags(spec, ['--help']).help).toBe(true);
  });

  it('parse turns a string into the value, default included; what it throws names the flag', () => {
    const seeds = (s: string) => {
      if (!/^\d+(,\d+)*$/.test(s)) throw new Error(`expected integers like 1,2,3, got '${s}'`);
      return s.split(',').map(Number);
    };
    const spec = defineFlags({ seeds: { type: 'string', parse: seeds, default: '1,2,3', description: 'seeds' } });
    expectTypeOf(parseFlags(spec, []).values.seeds).toEqualTypeOf<number[]>();
    expect(parseFlags(spec, []).values.seeds).toEqual([1, 2, 3]);
    expect(parseFlags(spec, ['--seeds=4,5']).values.seeds).toEqual([4, 5]);
    const e = usageError(() => parseFlags(spec, ['--seeds', '1,x']));
    expect(e.message).toBe("--seeds: expected integers like 1,2,3, got '1,x'");
    expect(e.flag).toBe('--seeds');
    expect(e.cause).toBeInstanceOf(Error);
  });

  it('refuses a spec that redefines --help or gives two flags one short letter', () => {
    expect(() => parseFlags({ help: { type: 'boolean', description: 'h' } }, [])).toThrow(/--help is built in/);
    expect(() =>
      parseFlags({ a: { type: 'boolean', short: 'q', description: 'a' }, b: { type: 'boolean', short: 'q', description: 'b' } }, []),
    ).toThrow(/-q is both --a and --b/);
    expect(() => parseFlags({ a: { type: 'boolean', short: 'h', description: 'a' } }, [])).toThrow(/-h is both --help and --a/);
  });
});

describe('usage', () => {
  it('lists every flag with its placeholder, description and default, aligned, --help last', () => {
    const text = usage(SPEC);
    const lines = text.split('\n');
    expect(lines).toHaveLength(Object.keys(SPEC).length + 1);
    expect(lines).toEqual([
      '  --steps N          training steps',
      '  --seed S           model init seed (default 7)',
      '  --shift N          an offset, any sign',
      '  --jobs N           runs at a time (default 2)',
      '  --port N           TCP port (default 8080)',
      '  --lr X             learning rate',
      "  --out DIR          run directory (default: the config's out)",
      '  --level VALUE      log level (default warn)',
      '  --names A,B,...    models to train (default dense,moe)',
      '  -r, --reuse        read finished runs back',
      '  --eval-qa FILE     questions',
      '  -h, --help         this text',
    ]);
  });

  it('marks required flags, indents multi-line descriptions, takes its own --help line', () => {
    const text = usage(
      { set: { type: 'string', placeholder: 'F=V,...', required: true, description: 'one field\nset to each value' } },
      { help: 'print this and exit' },
    );
    expect(text).toBe(
      ['  --set F=V,...    one field', '                   set to each value (required)', '  -h, --help       print this and exit'].join(
        '\n',
      ),
    );
  });
});

describe('parseArgvOrExit', () => {
  afterEach(() => vi.restoreAllMocks());

  function run(argv: string[]) {
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    let out = '';
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out += String(s);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
    let result: unknown;
    try {
      result = parseArgvOrExit(SPEC, { name: 'demo bench', synopsis: 'usage: demo [--steps N]', argv });
    } catch (e) {
      result = (e as Error).message;
    }
    const exited = exit.mock.calls.map((c) => c[0]);
    vi.restoreAllMocks();
    return { result, out, err, exited };
  }

  it('returns the values; a usage error exits 2 with the name and synopsis on stderr; --help exits 0', () => {
    const ok = run(['--steps=5']);
    expect((ok.result as { values: { steps: number } }).values.steps).toBe(5);
    expect(ok.exited).toEqual([]);

    const bad = run(['--step', '5']);
    expect(bad.exited).toEqual([2]);
    expect(bad.err).toBe('demo bench: unknown flag --step; did you mean --steps?\nusage: demo [--steps N]\n(--help lists every flag)\n');
    expect(bad.out).toBe('');

    const help = run(['--help']);
    expect(help.exited).toEqual([0]);
    expect(help.out).toBe(`usage: demo [--steps N]\n\nflags:\n${usage(SPEC)}\n`);
    expect(help.err).toBe('');
  });
});
