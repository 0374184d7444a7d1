/**
 * A stand-in EngineTeacher for the HTTP tests: teaching a text makes the FakeEngine predict each
 * of its bytes after the one before (a "row" per previous byte), so a taught fact shows in the
 * next greedy completion. Saving writes the rows to a JSON file atomically (temp + rename).
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { EngineTeacher, TaughtText, TeachOptions } from '../engine';

export class FakeTeacher implements EngineTeacher {
  /** previous byte → next byte, the taught "memory rows" */
  readonly rows = new Map<number, number>();
  unsaved = 0;
  saves = 0;
  readonly calls: TeachOptions[] = [];
  constructor(
    private readonly file: string,
    private readonly opts: { teachMs?: number; failSave?: boolean } = {},
  ) {}

  teach(tokens: number[], opts: TeachOptions): TaughtText {
    this.calls.push(opts);
    const end = performance.now() + (this.opts.teachMs ?? 0);
    while (performance.now() < end) {
      /* simulated compute */
    }
    const ids = new Set<number>();
    for (let i = 0; i + 1 < tokens.length; i++) {
      this.rows.set(tokens[i]!, tokens[i + 1]!);
      ids.add(tokens[i]!);
    }
    this.unsaved++;
    const slots = [...ids].sort((a, b) => a - b).slice(0, opts.topT ?? ids.size);
    return { tokens: tokens.length, slots, lossBefore: 5, lossAfter: 0.5 };
  }

  save(): { path: string; bytes: number } {
    if (this.opts.failSave) throw new Error('disk full');
    const json = JSON.stringify([...this.rows]);
    writeFileSync(`${this.file}.tmp`, json);
    renameSync(`${this.file}.tmp`, this.file);
    this.unsaved = 0;
    this.saves++;
    return { path: this.file, bytes: Buffer.byteLength(json) };
  }
}
