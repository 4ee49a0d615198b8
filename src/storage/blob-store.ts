import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Files (profile photos, sealed archives) kept under the data directory, addressed by opaque keys. */
export interface BlobStore {
  put(data: Buffer, prefix: string): Promise<string>;
  get(key: string): Promise<Buffer | null>;
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  list(prefix: string): Promise<string[]>;
}

const KEY_PATTERN = /^[a-z-]+\/[0-9a-f]{32}$/;

export function createFileBlobStore(root: string): BlobStore {
  const resolve = (key: string) => {
    if (!KEY_PATTERN.test(key)) throw new Error('invalid blob key');
    return path.join(root, key);
  };
  return {
    async put(data, prefix) {
      const key = `${prefix}/${crypto.randomBytes(16).toString('hex')}`;
      const file = resolve(key);
      await fs.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.tmp`;
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, file);
      return key;
    },
    async get(key) {
      try { return await fs.readFile(resolve(key)); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
    async delete(key) {
      await fs.rm(resolve(key), { force: true });
    },
    async exists(key) {
      try { await fs.access(resolve(key)); return true; } catch { return false; }
    },
    async list(prefix) {
      try {
        const names = await fs.readdir(path.join(root, prefix));
        return names.filter((n) => !n.endsWith('.tmp')).map((n) => `${prefix}/${n}`);
      } catch { return []; }
    },
  };
}
