/**
 * A progress bar on stderr for long work (training steps, benchmark runs, building a store):
 * redrawn in place at most 4 times a second on a terminal, one plain line every 5 s otherwise
 * (logs, CI), always a last line when done. `extra` carries live numbers (loss, tokens/s).
 */

/** A rate for humans: 3 significant digits, thousands grouped. */
function rate(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toLocaleString('en-US');
  return a >= 10 ? v.toFixed(1) : v.toPrecision(3).replace(/\.?0+$/, '') || '0';
}

/** A terminal progress bar with rate and ETA, on stderr (plain lines when not a TTY). */
export class Progress {
  private done = 0;
  private readonly start = performance.now();
  private lastPrint = 0;
  private lastPlain = Number.NEGATIVE_INFINITY;

  constructor(
    readonly total: number,
    readonly label = '',
    readonly unit = 'it',
  ) {}

  tick(n = 1, extra = ''): void {
    this.done += n;
    const now = performance.now();
    const finished = this.done >= this.total;
    if (!finished && now - this.lastPrint < 250) return;
    this.lastPrint = now;
    const elapsed = (now - this.start) / 1000;
    const perSec = this.done / Math.max(elapsed, 1e-9);
    const eta = perSec > 0 ? (this.total - this.done) / perSec : Number.POSITIVE_INFINITY;
    const frac = Math.min(1, this.done / this.total);
    const width = 24;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const line =
      `${this.label} ${bar} ${this.done}/${this.total} ` +
      `${rate(perSec)} ${this.unit}/s ETA ${Number.isFinite(eta) ? eta.toFixed(0) : '?'}s ${extra}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${finished ? '\n' : ''}`);
    else if (finished || now - this.lastPlain >= 5000) {
      this.lastPlain = now;
      process.stderr.write(`${line}\n`);
    }
  }
}
