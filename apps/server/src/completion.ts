/**
 * Completion: one request's generated text, token by token, with stop sequences and
 * stream-safe deltas.
 *
 * After each sampled token the whole completion is decoded again (byte-level BPE: a
 * character may span tokens, so only the full byte string decodes reliably). A delta is
 * released only when it can no longer change:
 *   - trailing U+FFFD may be the first bytes of a character still being generated;
 *   - a trailing piece that is a prefix of a stop sequence may become that stop sequence.
 * The concatenated deltas therefore equal the final, non-streamed text exactly.
 */

export type FinishReason = 'stop' | 'length';

export class Completion {
  readonly tokens: number[] = [];
  /** the completion text so far (cut before a stop sequence once one appeared) */
  text = '';
  finishReason: FinishReason | null = null;
  /** tokens sampled, the end-of-sequence token included (usage.completion_tokens) */
  sampled = 0;
  /** characters of `text` already handed out as deltas */
  private released = 0;

  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stop: string[],
    private readonly eosId: number,
    readonly maxTokens: number,
    /** drop the text's leading whitespace (a chat reply after "Assistant:") */
    private readonly trimStart = false,
  ) {}

  get done(): boolean {
    return this.finishReason !== null;
  }

  /**
   * Take one sampled token; returns the text that became final (possibly '').
   * `contextFull`: the model cannot take this token as input any more (no next token).
   */
  push(id: number, contextFull = false): string {
    if (this.done) throw new Error('Completion.push after finish');
    this.sampled++;
    if (id === this.eosId) {
      this.finishReason = 'stop';
      return this.flush();
    }
    this.tokens.push(id);
    this.text = this.decode(this.tokens);
    // a trimmed prefix of a growing text stays a prefix: released deltas never change
    if (this.trimStart) this.text = this.text.replace(/^\s+/, '');
    const cut = this.firstStop();
    if (cut >= 0) {
      this.text = this.text.slice(0, cut);
      this.finishReason = 'stop';
      return this.flush();
    }
    if (this.tokens.length >= this.maxTokens || contextFull) {
      this.finishReason = 'length';
      return this.flush();
    }
    const end = this.text.length - this.heldBack();
    if (end <= this.released) return '';
    const delta = this.text.slice(this.released, end);
    this.released = end;
    return delta;
  }

  /** End without sampling (max_tokens 0 with echo: only the prompt is scored). */
  finishEmpty(): void {
    this.finishReason = 'length';
  }

  /** Everything not yet released (at the end of generation). */
  flush(): string {
    const delta = this.text.slice(this.released);
    this.released = this.text.length;
    return delta;
  }

  private firstStop(): number {
    let best = -1;
    for (const s of this.stop) {
      const i = this.text.indexOf(s);
      if (i >= 0 && (best < 0 || i < best)) best = i;
    }
    return best;
  }

  /** How many trailing characters may still change. */
  private heldBack(): number {
    const t = this.text;
    let n = 0;
    while (n < t.length && t.charCodeAt(t.length - 1 - n) === 0xfffd) n++;
    const body = t.length - n;
    let stopHold = 0;
    for (const s of this.stop) {
      // longest proper prefix of s that ends the text
      for (let len = Math.min(s.length - 1, body); len > stopHold; len--) {
        if (t.startsWith(s.slice(0, len), body - len)) {
          stopHold = len;
          break;
        }
      }
    }
    return n + stopHold;
  }
}
