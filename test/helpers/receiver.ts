import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Handler = (req: Received, res: http.ServerResponse) => void;

/**
 * A real webhook receiver on 127.0.0.1. Each test registers a handler under its own path
 * (`/r/<name>`); unknown paths answer 204. Records every request and the in-flight peak per path.
 */
export async function startReceiver(port = 0) {
  const handlers = new Map<string, Handler>();
  const received: Received[] = [];
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      const n = (inFlight.get(r.path) ?? 0) + 1;
      inFlight.set(r.path, n);
      peak.set(r.path, Math.max(peak.get(r.path) ?? 0, n));
      res.on('close', () => inFlight.set(r.path, (inFlight.get(r.path) ?? 1) - 1));
      const h = handlers.get(r.path);
      if (h) h(r, res);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = (server.address() as AddressInfo).port;
  return {
    port: actualPort,
    url: (path: string) => `http://127.0.0.1:${actualPort}${path}`,
    on: (path: string, h: Handler) => handlers.set(path, h),
    received,
    to: (path: string) => received.filter((r) => r.path === path),
    peak: (path: string) => peak.get(path) ?? 0,
    inFlight: (path: string) => inFlight.get(path) ?? 0,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A port nothing listens on (bound once, then released). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
