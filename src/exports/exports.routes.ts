import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { errors } from '../http/schemas.ts';
import { DATASETS, FORMATS, type ExportsService } from './exports.service.ts';
import type { TypedApp } from '../plugin/registry.ts';

const tags = ['exports'];

export function registerExportRoutes(app: TypedApp, exports: ExportsService) {
  app.get('/v1/exports/:dataset', {
    config: { access: 'operator' },
    schema: { operationId: 'exportDataset',
      tags,
      summary: 'Stream a dataset export (deleted customers pseudonymized)',
      description: `Datasets: ${DATASETS.join(', ')}. JSON Lines (default) or CSV with a header row. `
        + 'Streamed batch by batch: memory stays constant however many rows. Rows of deleted customers carry keyed '
        + 'pseudonyms (stable per customer, equal across datasets) instead of their id and identifying fields, and '
        + 'null for other personal fields. See docs/exports.md.',
      params: Type.Object({
        dataset: Type.String({ maxLength: 64, description: `One of ${DATASETS.join(', ')}; any other is 404` }),
      }, { additionalProperties: false }),
      querystring: Type.Object({
        format: Type.Optional(Type.Union(FORMATS.map((f) => Type.Literal(f)), { default: 'jsonl' })),
      }, { additionalProperties: false }),
      response: {
        200: {
          description: 'The export, one record per line',
          content: {
            'application/x-ndjson': { schema: { type: 'string', description: 'One JSON object per line' } },
            'text/csv': { schema: { type: 'string', description: 'RFC 4180 CSV with a header row' } },
          },
        },
        ...errors(404),
      },
    },
  }, async (request, reply) => {
    const { dataset } = request.params;
    const format = ((request.query).format ?? 'jsonl');
    const out = await exports.open(dataset, format, principalOf(request).keyId);
    return reply
      .type(out.contentType)
      .header('content-disposition', `attachment; filename="${out.filename}"`)
      .header('cache-control', 'no-store')
      .send(out.stream);
  });
}
