/**
 * The chat template a run stores in its checkpoint (config.json `extra.chat_template`), which
 * mnemo-serve's /v1/chat/completions renders messages with: per role a text where `{content}` is
 * replaced literally by the message, then `generation`, after which the model writes the reply;
 * `stop` ends the reply when the model starts the next turn. A trainer config may set its own
 * (`chatTemplate`); the default reads
 *
 *   "{system}\n\nUser: {user}\nAssistant: {assistant}\nUser: {user}\nAssistant:"
 */
import { z } from 'zod';

const roleText = z.string().refine((s) => s.includes('{content}'), 'must contain {content}');

export const chatTemplateSchema = z
  .object({
    prefix: z.string().default(''),
    roles: z.object({ system: roleText, user: roleText, assistant: roleText }).strict(),
    generation: z.string(),
    stop: z.array(z.string().min(1)).max(4).default([]),
  })
  .strict();

export type ChatTemplate = z.output<typeof chatTemplateSchema>;

export const DEFAULT_CHAT_TEMPLATE: ChatTemplate = {
  prefix: '',
  roles: { system: '{content}\n\n', user: 'User: {content}\n', assistant: 'Assistant: {content}\n' },
  generation: 'Assistant:',
  stop: ['\nUser:'],
};
