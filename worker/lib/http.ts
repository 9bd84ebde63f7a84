// Errors and body validation for the JSON API: every failure is {error:{code,message,field?}}.
import * as v from 'valibot';
import { IdempotencyKey } from '../../protocol/fields.ts';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly field?: string;
  constructor(status: ContentfulStatusCode, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export const notFound = (what: string) => new ApiError(404, 'not-found', `${what} not found`);

export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof ApiError) {
    const body = { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
    return c.json(body, err.status);
  }
  if (err instanceof HTTPException) {
    return c.json({ error: { code: 'http', message: err.message } }, err.status);
  }
  console.error('unhandled error', err instanceof Error ? err.message : String(err));
  return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
}

/** A 400 that names the first offending field. */
function invalid(issues: [v.BaseIssue<unknown>, ...v.BaseIssue<unknown>[]]): ApiError {
  const issue = issues[0];
  const field = v.getDotPath(issue) ?? undefined;
  // an object schema reports an unknown key (strict) and a missing one at the key itself
  const atKey = (issue.type === 'strict_object' || issue.type === 'object') && field !== undefined;
  const message = atKey && issue.expected === 'never' ? 'is not a known field' : atKey && issue.input === undefined ? 'is required' : issue.message;
  return new ApiError(400, 'invalid', field ? `${field}: ${message}` : message, field);
}

/** Parse the JSON body against a schema. */
export async function readBody<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new ApiError(400, 'invalid', 'the body must be JSON');
  }
  // (valibot takes an array for an object; a bare value would get a schema's wording)
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ApiError(400, 'invalid', 'the body must be a JSON object');
  const r = v.safeParse(schema, json);
  if (!r.success) throw invalid(r.issues);
  return r.output;
}

/** Validate the query string. */
export function readQuery<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  const r = v.safeParse(schema, c.req.query());
  if (!r.success) throw invalid(r.issues);
  return r.output;
}

/** The optional Idempotency-Key header, validated (400 names the header). */
export function readIdempotencyKey(c: Context): string | null {
  const key = c.req.header('Idempotency-Key');
  if (key === undefined) return null;
  const r = v.safeParse(IdempotencyKey, key);
  if (!r.success) throw new ApiError(400, 'invalid', `Idempotency-Key: ${r.issues[0].message}`, 'Idempotency-Key');
  return r.output;
}
