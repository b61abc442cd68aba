/**
 * Checkpoint in a local file: write a temp file beside it, fsync, rename over
 * the old one, fsync the directory. rename() within one directory is atomic
 * on POSIX file systems, so a crash leaves either the old or the new file.
 */
import { open, readFile, rename, unlink, readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeCheckpoint, encodeCheckpoint, streamNameOf, type Checkpoint, type CheckpointStore } from './checkpoint-store.js';

/**
 * The default checkpoint file for an input stream (name or ARN):
 * `./rcf-stream-NAME.checkpoint`, so apps started in one directory for
 * different streams never share one.
 */
export function defaultCheckpointPath(stream: string): string {
  return `./rcf-stream-${streamNameOf(stream).replace(/[^A-Za-z0-9._-]/g, '_')}.checkpoint`;
}

export interface FileCheckpointStoreOptions {
  /** Path of the checkpoint file; its directory must exist. */
  path: string;
}

export class FileCheckpointStore implements CheckpointStore {
  readonly path: string;

  constructor(opts: FileCheckpointStoreOptions | string) {
    this.path = resolve(typeof opts === 'string' ? opts : opts.path);
  }

  async load(): Promise<Checkpoint | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return decodeCheckpoint(bytes, this.path);
  }

  async save(cp: Checkpoint): Promise<void> {
    const data = encodeCheckpoint(cp);
    const tmp = this.tempPath();
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      // Data must be on disk before the rename makes it visible, or a power loss
      // could leave a renamed but empty file.
      await fh.sync();
    } catch (e) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await fh.close();
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await this.syncDir();
  }

  /** Removes temp files left by a crash mid-save. Never touches the checkpoint itself. */
  async removeStaleTempFiles(): Promise<number> {
    const dir = dirname(this.path);
    const prefix = `${basename(this.path)}.tmp-`;
    let removed = 0;
    for (const name of await readdir(dir)) {
      if (name.startsWith(prefix)) {
        await unlink(join(dir, name)).catch(() => undefined);
        removed++;
      }
    }
    return removed;
  }

  /** Where save() writes before renaming; exposed so tests can simulate a crash mid-write. */
  tempPath(): string {
    return `${this.path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  private async syncDir(): Promise<void> {
    // Persists the rename itself; some platforms cannot open directories, which is harmless.
    let dh;
    try {
      dh = await open(dirname(this.path), 'r');
      await dh.sync();
    } catch {
      /* best effort */
    } finally {
      await dh?.close();
    }
  }
}
