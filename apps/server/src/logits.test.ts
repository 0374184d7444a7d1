import { describe, expect, it } from 'vitest';
import { DEFAULT_CHAT_TEMPLATE, parseChatTemplate, renderChat } from '@mnemo/model';
import { adjustLogits, logSumExp, tokenLogprob } from './logits';

describe('logits', () => {
  const logits = Float32Array.from([0.5, 2, -1, 2.5, 0, 1.25, -3, 0.75]);

  it('log-softmax and top-k agree with a direct computation', () => {
    const naive = Math.log(logits.reduce((s, l) => s + Math.exp(l), 0));
    expect(logSumExp(logits)).toBeCloseTo(naive, 6);
    expect(logSumExp(Float32Array.from([1000, 1000]))).toBeCloseTo(1000 + Math.log(2), 6); // stable
    const t = tokenLogprob(logits, 5, 3);
    expect(t.logprob).toBeCloseTo(1.25 - naive, 6);
    expect(t.top.map((a) => a.id)).toEqual([3, 1, 5]);
    const sum = [...logits].reduce((s, l) => s + Math.exp(l - logSumExp(logits)), 0);
    expect(sum).toBeCloseTo(1, 6);
    expect(tokenLogprob(logits, 0, 0).top).toEqual([]);
    expect(tokenLogprob(logits, 0, 20).top.map((a) => a.id)).toEqual([3, 1, 5, 7, 0, 4, 2, 6]);
  });

  it('bias adds, presence subtracts once, frequency per occurrence; nothing to do returns the input', () => {
    const counts = new Map([
      [1, 3],
      [4, 1],
    ]);
    const out = adjustLogits(logits, { logitBias: new Map([[6, 10]]), presencePenalty: 0.5, frequencyPenalty: 0.25 }, counts);
    expect(out[6]).toBeCloseTo(7, 6);
    expect(out[1]).toBeCloseTo(2 - 0.5 - 0.75, 6);
    expect(out[4]).toBeCloseTo(0 - 0.5 - 0.25, 6);
    expect(out[0]).toBe(logits[0]);
    expect(logits[6]).toBe(-3); // the model's logits are not modified
    expect(adjustLogits(logits, { presencePenalty: 1 }, new Map())).toBe(logits);
  });
});

describe('chat template', () => {
  it('substitutes {content} literally, once per message, in order', () => {
    const p = renderChat(DEFAULT_CHAT_TEMPLATE, [
      { role: 'system', content: 'S $& {content}' },
      { role: 'user', content: 'U' },
      { role: 'assistant', content: 'A' },
      { role: 'user', content: 'V' },
    ]);
    expect(p).toBe('S $& {content}\n\nUser: U\nAssistant: A\nUser: V\nAssistant:');
  });

  it('a stored template is validated, naming the field', () => {
    expect(() => parseChatTemplate({ roles: { system: '{content}', user: 'x', assistant: '{content}' }, generation: '' })).toThrow(
      'chat_template.roles.user: must contain {content}',
    );
    expect(parseChatTemplate({ roles: { system: '{content}', user: '{content}', assistant: '{content}' }, generation: '>' })).toEqual({
      prefix: '',
      roles: { system: '{content}', user: '{content}', assistant: '{content}' },
      generation: '>',
      stop: [],
    });
  });
});
