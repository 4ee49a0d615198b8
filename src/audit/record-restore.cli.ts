import type { CliCommand } from '../plugin/registry.ts';

const USAGE = 'lethe audit record-restore [--label L]';
const LABEL = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * `lethe audit record-restore`: documents a restore made by other means than `lethe backup
 * restore` (pg_restore, a volume snapshot) as a fork of the audit chain. Without it, verify
 * reports such a database as truncated or rewritten against the checkpoints outside the
 * database, which is the point: only an operator's explicit, recorded act turns the lost events
 * into "lost to a documented restore". The fork line names the checkpointed head it replaces
 * and the last checkpoint the restored chain still agrees with; an audited `audit.restore_recorded` event follows it. Run it with every
 * server stopped (it takes the same lock as a restore). The label names the restore (no
 * personal data: letters, digits and `._:-`).
 */
export const recordRestoreCli: CliCommand = {
  usage: `${USAGE.padEnd(41)} document a restore made by other means (pg_restore, a snapshot) as an audit-chain fork`,
  matches: (argv) => argv[0] === 'audit' && argv[1] === 'record-restore',
  async run(argv, config) {
    const i = argv.indexOf('--label');
    const label = i >= 0 ? argv[i + 1] ?? '' : 'external';
    if (!LABEL.test(label)) { console.error(`usage: ${USAGE} (the label: 1-64 of A-Z a-z 0-9 . _ : -)`); return 2; }
    // Loaded on use: the CLI table is built from the domain plugins, which import this file.
    const { takeRestoreLock } = await import('../deployment/guards.ts');
    const { runningServer } = await import('../cli/server-client.ts');
    const { openDatabase, migrate } = await import('../db/database.ts');
    const { MIGRATIONS } = await import('../domains.ts');
    const { deriveSecrets, loadMasterKey } = await import('../secrets.ts');
    const { appendAudit, bindAuditKey, eventHashAt } = await import('./audit.repo.ts');
    const { anchorsOf, checkpointAudit, readCheckpoints, recordFork } = await import('./checkpoints.ts');

    const refused = 'refused: a Lethe server is serving this database; stop every server first, then record the restore';
    const lock = config.databaseUrl ? await takeRestoreLock(config.databaseUrl) : null;
    if (config.databaseUrl && !lock) { console.error(`lethe audit record-restore: ${refused}`); return 1; }
    if (!config.databaseUrl && runningServer(config)) { console.error(`lethe audit record-restore: ${refused}`); return 1; }
    const handle = await openDatabase({ ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}), dataDir: config.dataDir });
    try {
      await migrate(handle.db, MIGRATIONS);
      const secrets = deriveSecrets(loadMasterKey(config.masterKey, config.dataDir));
      bindAuditKey(handle.db, secrets.auditKey);
      const deps = { db: handle.db, config, key: secrets.auditKey, now: () => new Date() };
      const { anchors } = anchorsOf(readCheckpoints(config, secrets.auditKey).lines);
      const lastSeq = Math.max(0, ...anchors.keys());
      const replaced = lastSeq > 0 ? { seq: lastSeq, hash: anchors.get(lastSeq)! } : null;
      // The restored chain diverges from the checkpoints after the last anchor it still agrees with:
      // that is the fork point (events a server appended since, e.g. a replay, are anchored anew).
      const hashAt = (seq: number) => eventHashAt(handle.db, seq);
      let restored: { seq: number; hash: string } | null = null;
      for (const seq of [...anchors.keys()].sort((a, b) => b - a)) {
        if (await hashAt(seq) === anchors.get(seq)) { restored = { seq, hash: anchors.get(seq)! }; break; }
      }
      if (!replaced || restored?.seq === replaced.seq) {
        console.log('nothing to record: the chain is not behind or different from its last checkpoint');
        return 0;
      }
      await recordFork(deps, { replaced, restored, backupId: `external:${label}` });
      await handle.db.transaction().execute((trx) => appendAudit(trx, {
        type: 'audit.restore_recorded', actorKeyId: null, at: deps.now(),
        data: { label, replacedSeq: replaced.seq, restoredSeq: restored?.seq ?? 0 },
      }));
      await checkpointAudit(deps);
      console.log(`recorded restore external:${label}: head ${replaced.seq} replaced by ${restored?.seq ?? 0} (at most ${replaced.seq - (restored?.seq ?? 0)} events lost to it)`);
      return 0;
    } finally {
      await handle.close();
      await lock?.release();
    }
  },
};
