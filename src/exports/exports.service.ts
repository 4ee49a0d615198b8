import { Readable } from 'node:stream';
import { Counter, type Registry } from 'prom-client';
import { appendAudit } from '../audit/audit.repo.ts';
import type { Ctx } from '../context.ts';
import { notFound } from '../http/errors.ts';
import { csvLine } from './csv.ts';
import { DATASETS, defOf, exportColumns, type Dataset } from './export-datasets.ts';
import { createFormatter, type Format } from './export-format.ts';
import { exportRows } from './export-source.ts';
import { exportSelect } from './exports.repo.ts';

export { DATASETS, exportColumns, exportPseudonym, type Dataset, type ExportColumn, type Treatment } from './export-datasets.ts';
export { jsonlLine, jsonlPrefixes, type Format } from './export-format.ts';
export { BATCH_SIZE } from './export-source.ts';

export const FORMATS = ['jsonl', 'csv'] as const satisfies readonly Format[];

export const CONTENT_TYPES: Record<Format, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};

/** Export counters on the process's registry (registered once even if services are built twice). */
function exportMetrics(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
  return {
    exports: counter('lethe_exports_total', 'Dataset exports by dataset, format and outcome (completed, aborted by the client, failed)',
      ['dataset', 'format', 'outcome']),
    rows: counter('lethe_export_rows_total', 'Rows written by dataset exports', ['dataset']),
  };
}

export function createExportsService(ctx: Ctx) {
  const { db, secrets, log } = ctx;
  const metrics = exportMetrics(ctx.metrics.registry);

  async function* generate(dataset: Dataset, format: Format): AsyncGenerator<Buffer> {
    const def = defOf(dataset);
    const columns = exportColumns(dataset);
    const started = Date.now();
    let rows = 0;
    let outcome: 'completed' | 'aborted' | 'failed' = 'aborted';
    try {
      const select = await exportSelect(db, def, columns);
      const formatRows = createFormatter(def, columns, select.kinds, format, {
        pseudonymKey: secrets.pseudonymKey, exportKey: secrets.exportKey, crypto: ctx.crypto,
      });
      if (format === 'csv') yield Buffer.from(csvLine(columns.map((c) => c.name)));
      // One chunk of rows (a COPY read, a keyset batch) → its bytes; the rows die with this iteration.
      for await (const chunk of exportRows(db, def, select)) {
        const bytes = Buffer.from(formatRows(chunk), 'utf8');
        rows += chunk.length;
        metrics.rows.inc({ dataset }, chunk.length);
        // Waits here until the consumer has read what was yielded before (stream backpressure). A client
        // that disconnects destroys the stream, which returns from this yield: the row source is
        // closed (export-source.ts stops its COPY) and nothing more is read.
        yield bytes;
      }
      outcome = 'completed';
      log.info({ dataset, format, rows, ms: Date.now() - started }, 'export finished');
    } catch (error) {
      outcome = 'failed';
      log.warn({ dataset, format, rows, err: (error as Error).message }, 'export failed part-way');
      throw error;
    } finally {
      metrics.exports.inc({ dataset, format, outcome });
      if (outcome === 'aborted') log.info({ dataset, format, rows }, 'export stopped: the client went away');
    }
  }

  return {
    /**
     * Opens an export: records who exported what in the audit log, then returns a stream that
     * reads the dataset chunk by chunk as the client consumes it.
     */
    async open(datasetName: string, format: Format, actorKeyId: string | null) {
      if (!DATASETS.includes(datasetName)) {
        throw notFound(`Dataset "${datasetName}" (one of ${DATASETS.join(', ')})`);
      }
      const dataset = datasetName as Dataset;
      await db.transaction().execute((trx) => appendAudit(trx, {
        type: 'export.created', actorKeyId, subjectType: 'export', subjectId: null, at: ctx.clock.now(),
        data: { dataset, format },
      }));
      const stream = Readable.from(generate(dataset, format), { objectMode: false, highWaterMark: 64 * 1024 });
      return { stream, contentType: CONTENT_TYPES[format], filename: `${dataset}.${format}` };
    },
  };
}

export type ExportsService = ReturnType<typeof createExportsService>;
