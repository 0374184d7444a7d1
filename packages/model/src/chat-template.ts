/**
 * Chat template: how /v1/chat/completions turns `messages` into the one prompt the model reads.
 *
 * A template is plain data, stored in the checkpoint (config.json `extra.chat_template`, written
 * by mnemo-train: its default, or the trainer config's `chatTemplate`; mnemo-serve reads it, and
 * falls back to the default for a checkpoint without one). Each role has a text in
 * which `{content}` is replaced by the message's content — a literal substitution, no code, no
 * expressions. The prompt is
 *
 *   prefix + role[m1](content1) + role[m2](content2) + ... + generation
 *
 * and the model writes the assistant's reply after `generation`. `stop` sequences (the next turn
 * starting) are added to every chat request's own. The default:
 *
 *   system:     "{content}\n\n"
 *   user:       "User: {content}\n"
 *   assistant:  "Assistant: {content}\n"
 *   generation: "Assistant:"        stop: ["\nUser:"]
 *
 * so [{system: "Be brief."}, {user: "Hi"}] reads "Be brief.\n\nUser: Hi\nAssistant:". The reply's
 * leading whitespace is dropped (the model writes " Hello" after "Assistant:").
 */
import { ConfigError } from '@mnemo/core';
import { z } from 'zod';

export const CHAT_ROLES = ['system', 'user', 'assistant'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];

export interface ChatTemplate {
  /** text before the first message */
  prefix: string;
  /** per role, the message's text with `{content}` where its content goes */
  roles: Record<ChatRole, string>;
  /** appended after the last message: the model continues from here */
  generation: string;
  /** stop sequences added to every chat request */
  stop: string[];
}

export const DEFAULT_CHAT_TEMPLATE: ChatTemplate = {
  prefix: '',
  roles: { system: '{content}\n\n', user: 'User: {content}\n', assistant: 'Assistant: {content}\n' },
  generation: 'Assistant:',
  stop: ['\nUser:'],
};

const roleText = z.string().refine((s) => s.includes('{content}'), 'must contain {content}');

export const chatTemplateSchema = z
  .object({
    prefix: z.string().default(''),
    roles: z.object({ system: roleText, user: roleText, assistant: roleText }).strict(),
    generation: z.string(),
    stop: z.array(z.string().min(1)).max(4).default([]),
  })
  .strict();

/** Validate a stored template; the error names the field (`chat_template.roles.user: must contain {content}`). */
export function parseChatTemplate(json: unknown): ChatTemplate {
  const r = chatTemplateSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ConfigError(`chat_template.${i.path.map(String).join('.')}`, i.message);
  }
  return r.data;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** The prompt text of `messages` under `template` (literal substitution of `{content}`). */
export function renderChat(template: ChatTemplate, messages: readonly ChatMessage[]): string {
  let out = template.prefix;
  for (const m of messages) out += template.roles[m.role].split('{content}').join(m.content);
  return out + template.generation;
}
