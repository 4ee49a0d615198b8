import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** The one table from stable error code to HTTP status. */
export const ERROR_STATUS = {
  validation_failed: 400,
  application_id_required: 400,
  unsafe_webhook_url: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  legal_hold: 409,
  pending_transactions: 409,
  deletion_not_required: 409,
  idempotency_key_reused: 409,
  idempotency_key_in_flight: 409,
  last_operator_key: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  unavailable: 503,
  backup_location_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<ErrorCode, string> = {
  validation_failed: 'Validation failed',
  application_id_required: 'applicationId is required',
  unsafe_webhook_url: 'Webhook URL not allowed',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  legal_hold: 'Customer is under legal hold',
  pending_transactions: 'Customer has pending transactions',
  deletion_not_required: 'Deletion not required yet',
  idempotency_key_reused: 'Idempotency-Key reused with a different request',
  idempotency_key_in_flight: 'A request with this Idempotency-Key is in progress',
  last_operator_key: 'The last active operator key cannot be revoked',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  rate_limited: 'Too many requests',
  internal_error: 'Internal error',
  unavailable: 'Service unavailable',
  backup_location_unavailable: 'Backup location unavailable',
};

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(code: ErrorCode, detail: string, extra?: Record<string, unknown>, headers?: Record<string, string>) {
    super(detail);
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.extra = extra;
    this.headers = headers;
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const validation = (detail: string) => new AppError('validation_failed', detail);

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  requestId: string;
  instance?: string;
  [extra: string]: unknown;
}

export function problem(code: ErrorCode, detail: string, requestId: string, extra?: Record<string, unknown>): Problem {
  return {
    type: `https://lethe.dev/problems/${code.replaceAll('_', '-')}`,
    title: TITLES[code],
    status: ERROR_STATUS[code],
    detail,
    code,
    requestId,
    ...extra,
  };
}

export function sendProblem(reply: FastifyReply, code: ErrorCode, detail: string, extra?: Record<string, unknown>) {
  const body = problem(code, detail, String(reply.request.id), extra);
  return reply.code(body.status).type('application/problem+json').send(body);
}

/** Turns a validation error from Fastify/Ajv into a message naming the field. */
function describeValidation(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return error.message;
  const where = error.validationContext ?? 'body';
  const params = first.params as Record<string, unknown> | undefined;
  let field = (first.instancePath || '').replace(/^\//, '').replaceAll('/', '.');
  if (params?.missingProperty) field = [field, params.missingProperty].filter(Boolean).join('.');
  if (params?.additionalProperty) {
    return `${where}${field ? `.${field}` : ''}: unknown property "${String(params.additionalProperty)}"`;
  }
  return `${where}${field ? `.${field}` : ''} ${first.message ?? 'is invalid'}`;
}

export function errorHandler(error: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof AppError) {
    if (error.headers) reply.headers(error.headers);
    return sendProblem(reply, error.code, error.message, error.extra);
  }
  const fe = error as FastifyError;
  if (fe.validation) return sendProblem(reply, 'validation_failed', describeValidation(fe));
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendProblem(reply, 'payload_too_large', 'Request body exceeds the 1 MiB limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendProblem(reply, 'unsupported_media_type', fe.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return sendProblem(reply, 'validation_failed', `Malformed request body: ${fe.message}`);
  }
  if (error instanceof SyntaxError || fe.statusCode === 400) {
    return sendProblem(reply, 'validation_failed', `Malformed request: ${error.message}`);
  }
  if (fe.statusCode === 413) return sendProblem(reply, 'payload_too_large', 'Request body too large');
  if (fe.statusCode === 415) return sendProblem(reply, 'unsupported_media_type', fe.message);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendProblem(reply, 'validation_failed', fe.message);
  }
  // Unknown failure: log the error (never request bodies) and keep details out of the response.
  request.log.error({ err: { message: error.message, code: fe.code, stack: error.stack } }, 'unhandled error');
  return sendProblem(reply, 'internal_error', 'An internal error occurred; see the server log with this request id');
}
