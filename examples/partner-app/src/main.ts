// The example partner application: receives Lethe's data_deletion.required webhook through
// @lethe/client's deletion handler, deletes the customer's rows from its own database, and
// confirms. Without a public URL it runs in pull mode instead (PULL_INTERVAL_MS).
//
// Environment: LETHE_URL, LETHE_API_KEY (an application key), LETHE_WEBHOOK_SECRET (whsec_…),
// PORT (default 3000), HOST (default 127.0.0.1), DATA_DIR (PGlite directory; in memory if unset),
// PULL_INTERVAL_MS (pull mode: list and process due cases every so often; 0 = off).
import http from 'node:http';
import { createDeletionHandler, nodeHttpAdapter } from '@lethe/client';
import { openStore } from './store.ts';

function required(name: string): string {
  const v = process.env[name];
  if (!v) { console.error(`${name} is required`); process.exit(2); }
  return v;
}

const store = await openStore(process.env.DATA_DIR || undefined);
const handler = createDeletionHandler({
  baseUrl: required('LETHE_URL'),
  apiKey: required('LETHE_API_KEY'),
  webhookSecret: required('LETHE_WEBHOOK_SECRET'),
  deleteCustomerData: (event) => store.deleteCustomer(event.subscriptionId),
});
const webhook = nodeHttpAdapter(handler);

const json = (res: http.ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> : {};
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const records = /^\/demo\/customers\/([\w-]+)\/records$/.exec(url.pathname);
  if (req.method === 'POST' && url.pathname === '/webhooks/lethe') return webhook(req, res);
  if (req.method === 'GET' && url.pathname === '/healthz') return json(res, 200, { status: 'ok' });
  // Demo routes (no auth: the example listens on loopback): seed records, count them, pull now.
  (async () => {
    if (records && req.method === 'POST') {
      const body = await readJson(req);
      await store.addCustomer(records[1]!, (body.notes as string[] | undefined) ?? ['note one', 'note two', 'note three']);
      return json(res, 201, { records: await store.countRecords(records[1]!) });
    }
    if (records && req.method === 'GET') return json(res, 200, { records: await store.countRecords(records[1]!) });
    if (req.method === 'POST' && url.pathname === '/demo/pull') return json(res, 200, await handler.processDueCases());
    return json(res, 404, { error: 'not found' });
  })().catch((err: Error) => json(res, 500, { error: err.message }));
});

const pullEvery = Number(process.env.PULL_INTERVAL_MS ?? 0);
const timer = pullEvery > 0 ? setInterval(() => { handler.processDueCases().catch((e: Error) => console.error('pull failed:', e.message)); }, pullEvery) : null;

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const a = server.address() as { port: number };
  console.log(`partner app listening on ${a.port}; webhook at /webhooks/lethe${timer ? `; pulling every ${pullEvery} ms` : ''}`);
});

async function shutdown() {
  if (timer) clearInterval(timer);
  server.close();
  server.closeAllConnections();
  await store.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
