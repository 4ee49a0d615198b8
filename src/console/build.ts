// Builds the operator console with Vite into src/console/dist. Run by `npm install` (prepare) and
// before `npm start` (prestart, only when a source file is newer than the last build).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.join(here, 'web');
const distDir = path.join(here, 'dist');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

/** True when dist is missing or older than a file under src/console/web. */
export function consoleIsStale(): boolean {
  const index = path.join(distDir, 'index.html');
  if (!fs.existsSync(index)) return true;
  return newestMtime(webDir) > fs.statSync(index).mtimeMs;
}

export async function buildConsole(options: { ifStale?: boolean; quiet?: boolean } = {}): Promise<boolean> {
  if (options.ifStale && !consoleIsStale()) return false;
  let build: typeof import('vite').build;
  try {
    ({ build } = await import('vite'));
  } catch {
    // A production install without devDependencies: serve what is there (503 page if nothing).
    console.warn('console build skipped: vite is not installed (devDependencies omitted?)');
    return false;
  }
  // Always the production bundle, also when a test run (NODE_ENV=test) triggers the build.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ configFile: path.join(webDir, 'vite.config.ts'), logLevel: options.quiet ? 'warn' : 'info', mode: 'production' });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ifStale = process.argv.includes('--if-stale');
  buildConsole({ ifStale, quiet: ifStale }).catch((error: Error) => {
    console.error(`console build failed: ${error.message}`);
    process.exit(1);
  });
}
