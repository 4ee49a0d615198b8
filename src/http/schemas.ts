import { Type, type TSchema } from 'typebox';

export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const Timestamp = Type.String({ format: 'date-time' });
export const NullableString = (opts: Record<string, unknown> = {}) =>
  Type.Union([Type.String({ maxLength: 1000, ...opts }), Type.Null()]);
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const PageQuerySchema = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 500 })),
};

export const ProblemSchema = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  code: Type.String(),
  requestId: Type.String(),
}, { $id: 'Problem', additionalProperties: true });

export const ProblemRef = Type.Unsafe<unknown>({ $ref: 'Problem#' });

export const ListOf = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

/** Error responses a route documents beyond its success; every route gets 400/401/403/429/500. */
export function errors(...codes: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const c of [400, 401, 403, 429, 500, ...codes]) out[c] = ProblemRef;
  return out;
}

export const NoContent = Type.Null({ description: 'No content' });

/** A route that takes no query parameters: an unknown one is 400 validation_failed (documented, like every 4xx). */
export const NoQuery = Type.Object({}, { additionalProperties: false });
