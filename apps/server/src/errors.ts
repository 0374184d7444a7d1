/**
 * API errors in the OpenAI shape:
 *
 *   HTTP 400 {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": "..."}}
 *
 * Every 4xx/5xx the server sends goes through `ApiError`, so clients see one shape
 * for malformed JSON, bad fields, auth, limits, unknown routes and overload alike.
 */
import { MnemoError } from '@mnemo/core';
import type { z } from 'zod';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'timeout_error'
  | 'server_error'
  | 'service_unavailable';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends MnemoError {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** extra response headers (Retry-After, WWW-Authenticate) */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 naming the bad request field. */
export function invalidRequest(param: string | null, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** First zod issue → 400 naming the field (dotted path; an unknown key names itself). */
export function zodToApiError(err: z.ZodError): ApiError {
  const issue = err.issues[0]!;
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    const param = [...path, keys[0]!].join('.');
    return invalidRequest(
      param,
      `Unrecognized request argument supplied: ${keys.join(', ')}. Remove it; see GET /v1/models and the server README for the supported fields.`,
      'unknown_parameter',
    );
  }
  const param = path.length ? path.join('.') : null;
  const unsupported = issue.code === 'custom' && (issue as { params?: { unsupported?: boolean } }).params?.unsupported === true;
  const code = unsupported ? 'unsupported_parameter' : issue.code === 'invalid_type' ? 'invalid_type' : 'invalid_value';
  return invalidRequest(param, `${param ?? 'body'}: ${issue.message}`, code);
}
