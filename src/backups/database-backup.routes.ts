import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../context.ts';
import { LOCAL_CLI_KEY_ID, principalOf } from '../http/auth.ts';
import { AppError } from '../http/errors.ts';
import { Timestamp, Uuid, errors } from '../http/schemas.ts';
import type { TypedApp } from '../plugin/registry.ts';
import type { ArchiveService } from './archive.service.ts';
import { createDatabaseBackup, listDatabaseBackups, pruneDatabaseBackups } from './database-backup.ts';

const BackupFile = Type.Object({
  id: Uuid, file: Type.String(), createdAt: Timestamp, databaseKind: Type.String(), sizeBytes: Type.Integer(),
}, { additionalProperties: false });

/** Only the local CLI (token from the data-directory lock file) may call the route; anyone else gets 404. */
function requireLocalCli(request: FastifyRequest) {
  if (principalOf(request).keyId !== LOCAL_CLI_KEY_ID) {
    throw new AppError('not_found', 'This route serves only the lethe CLI on the machine running the embedded database');
  }
}

/**
 * Database backups while serving (no downtime): operators call these with an operator key, and
 * `lethe backup create|list|prune|open` call them when a server serves the embedded database
 * (src/cli/server-client.ts). Creating and pruning are audited (backup.created, backup.pruned).
 */
export function registerDatabaseBackupRoutes(app: TypedApp, ctx: Ctx, archives: ArchiveService) {
  app.post('/v1/backups/database', {
    config: { access: 'operator' },
    schema: {
      operationId: 'createDatabaseBackup',
      tags: ['backups'], summary: 'Take a database backup now, while serving (written to LETHE_BACKUP_DIR; audited)',
      response: { 201: Type.Object({
        id: Uuid, file: Type.String(), path: Type.String(), createdAt: Timestamp, tables: Type.Integer(), rows: Type.Integer(), journalSeq: Type.Integer(),
      }, { additionalProperties: false }), ...errors(409) },
    },
  }, async (request, reply) => {
    const r = await createDatabaseBackup(ctx, principalOf(request).keyId);
    reply.code(201);
    return {
      id: r.header.id, file: r.path.split('/').pop()!, path: r.path, createdAt: r.header.createdAt, tables: r.header.tables.length,
      rows: Object.values(r.rows).reduce((a, b) => a + b, 0), journalSeq: r.header.journal.seq,
    };
  });

  app.get('/v1/backups/database', {
    config: { access: 'operator' },
    schema: { operationId: 'listDatabaseBackups', tags: ['backups'], summary: 'Database backup files in LETHE_BACKUP_DIR, oldest first', response: { 200: Type.Object({ data: Type.Array(BackupFile) }), ...errors() } },
  }, async () => ({ data: listDatabaseBackups(ctx).map(({ path: _p, ...b }) => b) }));

  app.post('/v1/backups/database/prune', {
    config: { access: 'operator' },
    schema: {
      operationId: 'pruneDatabaseBackups',
      tags: ['backups'], summary: 'Delete database backups older than backupRetentionDays (audited)',
      response: { 200: Type.Object({ pruned: Type.Array(Type.String()), kept: Type.Integer() }), ...errors(409) },
    },
  }, async (request) => {
    const { pruned, kept } = await pruneDatabaseBackups(ctx, ctx.clock.now(), principalOf(request).keyId);
    return { pruned, kept };
  });

  // The decrypted archive is for the CLI only (`lethe backup open`): never returned to an API key.
  app.post('/v1/backups/archives/:id/open', {
    config: { access: 'operator' },
    schema: {
      operationId: 'openArchiveLocalCli',
      tags: ['backups'], summary: 'Only for `lethe backup open` on the machine serving the embedded database (404 to any API key): decrypt a sealed archive (audited)',
      params: Type.Object({ id: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
      response: { 200: Type.Record(Type.String(), Type.Unknown()), ...errors(404, 409) },
    },
  }, async (request) => {
    requireLocalCli(request);
    return archives.open(request.params.id, null);
  });
}
