// `node bench/export-memory.ts [rows] [variant…]`: where the server's memory goes during a
// customers export. For each variant (flags for the server's node, space separated, e.g.
// "--max-semi-space-size=1 --max-old-space-size=80"; "default" for none) it starts the server on
// one database of `rows` customers (the export bench's fixture), exports once, and samples every 100 ms: the process's RSS (/proc) and, from /metrics, V8's heap used and
// total, the young generation's size, and external memory (Buffers). Prints each one's peak
// minus its value before the export. Accumulation shows as heap *used* growing with the rows;
// heap sizing as heap *total* (and RSS) growing while the used part stays flat.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { defaultKeyringDir } from '../src/crypto/keyring.ts';
import { download, insertExportCustomers } from './exports.ts';
import { createDatabase, migrateDatabase, readVmRssMb, round, startServer, timed } from './lib.ts';

const rows = Number(process.argv[2] ?? 200_000);
const variants = process.argv.slice(3).length > 0 ? process.argv.slice(3) : ['default'];
const MB = 1048576;

async function metrics(baseUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const get = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN) / MB;
  return {
    heapUsed: get(/^lethe_nodejs_heap_size_used_bytes (\S+)/m),
    heapTotal: get(/^lethe_nodejs_heap_size_total_bytes (\S+)/m),
    newSpace: get(/^lethe_nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m),
    oldUsed: get(/^lethe_nodejs_heap_space_size_used_bytes\{space="old"\} (\S+)/m),
    external: get(/^lethe_nodejs_external_memory_bytes (\S+)/m),
  };
}

const db = await createDatabase('export_memory');
// One data directory for every variant (the database is bound to its backup location and keyring).
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-export-memory-'));
try {
  await migrateDatabase({ databaseUrl: db.url });
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await insertExportCustomers(c, rows);
  await c.end();
  for (const variant of variants) {
    const server = await startServer({ databaseUrl: db.url, dataDir, nodeArgs: variant === 'default' ? [] : variant.split(' ') });
    try {
      const before = { rss: readVmRssMb(server.pid), ...await metrics(server.baseUrl) };
      const peak = { ...before };
      let sampling = true;
      const loop = (async () => {
        while (sampling) {
          const m = { rss: readVmRssMb(server.pid), ...await metrics(server.baseUrl) };
          for (const k of Object.keys(m) as Array<keyof typeof m>) peak[k] = Math.max(peak[k], m[k]);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const t = await timed(() => download(server.baseUrl, '/v1/exports/customers?format=jsonl'));
      sampling = false;
      await loop;
      const growth = Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, `${round(before[k as keyof typeof before])} → +${round(v - before[k as keyof typeof before])}`]));
      console.log(`${variant}: ${t.value.lines} rows in ${round(t.ms / 1000)} s (${round(t.value.lines / (t.ms / 1000), 0)} rows/s); MiB before → peak growth:`, growth);
    } finally {
      await server.stop();
    }
  }
} finally {
  await db.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(defaultKeyringDir(dataDir), { recursive: true, force: true });
}
