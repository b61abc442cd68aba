/**
 * The one way a file is replaced: write a temporary file next to it, fsync it,
 * rename it over the target, fsync the directory. A crash at any point leaves the
 * old file or the new one, never a mix, and a rename that returned has reached the disk.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

function tempPathOf(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
}

/** Directories cannot be fsync'd on every platform; where they cannot, the rename is as durable as the OS makes it. */
function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // e.g. EISDIR/EPERM on some platforms
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const temp = tempPathOf(path);
  try {
    const fd = openSync(temp, 'w', 0o644);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let at = 0;
      while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirSync(dirname(path));
}

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = tempPathOf(path);
  try {
    const handle = await open(temp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // see fsyncDirSync
  }
}
