#!/usr/bin/env node
// `npx lethe …`: runs the TypeScript CLI on Node 24 (installed as a devDependency), whatever Node started this shim.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const local = path.join(root, 'node_modules', 'node', 'bin', 'node');
const major = Number(process.versions.node.split('.')[0]);
const node = major >= 24 ? process.execPath : fs.existsSync(local) ? local : null;
if (!node) {
  console.error('lethe: Node.js 24 is required; run `npm install` in the checkout first');
  process.exit(1);
}
// `serve` runs with npm start's node flags (package.json; the heap sizing in README "Heap flags").
const start = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start;
const flags = process.argv[2] === 'serve' ? (/^node\s+(.*?)\s*src\/main\.ts$/.exec(start)?.[1] ?? '').split(/\s+/).filter(Boolean) : [];
const result = spawnSync(node, [...flags, path.join(root, 'src', 'cli', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
