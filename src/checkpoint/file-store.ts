/**
 * Checkpoint in a local file: write a temp file beside it, fsync, rename over
 * the old one, fsync the directory. rename() within one directory is atomic
 * on POSIX file systems, so a crash leaves either the old or the new file.
 *
 * With `lock: true` (what `run` uses) the store owns the file while it is
 * open: its first load() or save() creates `PATH.lock` exclusively, holding
 * `pid@host`, and close() (or the process's exit) removes it. A second
 * process on the same checkpoint is refused with CheckpointLockedError; a lock
 * left by a process that no longer runs on this host (SIGKILL, power loss) is
 * taken over. Once the lock is held, temp files left by a kill mid-save are
 * removed: no other writer can be using them.
 */
import { link, open, readFile, rename, unlink, readdir, writeFile } from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeCheckpoint, encodeCheckpoint, streamNameOf, type Checkpoint, type CheckpointStore } from './checkpoint-store.js';
import { RcfStreamError } from '../util/errors.js';

/** Another live process holds the checkpoint file's lock. */
export class CheckpointLockedError extends RcfStreamError {
  override readonly name = 'CheckpointLockedError';
  readonly code = 'CHECKPOINT_LOCKED';
  constructor(
    readonly lockPath: string,
    readonly holder: string,
  ) {
    super(
      `Checkpoint ${lockPath.replace(/\.lock$/, '')} is in use by process ${holder} (lock file ${lockPath}). ` +
        `Two services on one checkpoint would both write output and overwrite each other's checkpoints. ` +
        `Stop the other one, or, if no rcf-stream process ${holder} exists any more, delete the lock file.`,
    );
  }
}

/** Locks this process holds, removed on exit even if close() is never reached. */
const heldLocks = new Map<string, string>();
let exitHookInstalled = false;
function releaseOnExit(): void {
  for (const [path, token] of heldLocks) {
    try {
      if (readFileSync(path, 'utf8') === token) unlinkSync(path);
    } catch {
      /* already gone */
    }
  }
}

/** Whether process `pid` exists on this host (EPERM: it exists but is not ours). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
  /** Own the file while open (`PATH.lock`, see the module comment). Default false: e.g. for reading a checkpoint. */
  lock?: boolean;
}

export class FileCheckpointStore implements CheckpointStore {
  readonly path: string;
  readonly lockPath: string;
  private readonly locking: boolean;
  /** Content of our lock file while we hold it. */
  private lockToken: string | undefined;

  constructor(opts: FileCheckpointStoreOptions | string) {
    this.path = resolve(typeof opts === 'string' ? opts : opts.path);
    this.lockPath = `${this.path}.lock`;
    this.locking = typeof opts === 'string' ? false : opts.lock === true;
  }

  async load(): Promise<Checkpoint | undefined> {
    if (this.locking) await this.acquireLock();
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
    if (this.locking) await this.acquireLock();
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

  /** Releases the lock (if held). The store may be opened again by a later load() or save(). */
  async close(): Promise<void> {
    const token = this.lockToken;
    if (token === undefined) return;
    this.lockToken = undefined;
    heldLocks.delete(this.lockPath);
    if ((await readFile(this.lockPath, 'utf8').catch(() => undefined)) === token) await unlink(this.lockPath).catch(() => undefined);
  }

  /** Takes `PATH.lock` (once), taking over a lock whose process is gone, then removes stale temp files. */
  private async acquireLock(): Promise<void> {
    if (this.lockToken !== undefined) return;
    const token = `${process.pid}@${hostname()} ${randomBytes(6).toString('hex')}\n`;
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(this.lockPath, token, { flag: 'wx', mode: 0o600 });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CheckpointLockedError(this.lockPath, 'unknown');
          throw e;
        }
      }
      const existing = await readFile(this.lockPath, 'utf8').catch(() => '');
      const holder = existing.split(' ')[0] ?? '';
      const m = /^(\d+)@(.*)$/.exec(holder);
      const sameHost = m !== null && m[2] === hostname();
      if (m === null || !sameHost || processAlive(Number(m[1])) || heldLocks.has(this.lockPath)) {
        throw new CheckpointLockedError(this.lockPath, holder || 'unknown');
      }
      // Stale: move it aside atomically; if what we moved is not the stale lock we read
      // (another process took it over meanwhile), put that one back and give up.
      const aside = `${this.lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        await rename(this.lockPath, aside);
      } catch {
        continue; // gone already: try to create ours
      }
      const moved = await readFile(aside, 'utf8').catch(() => '');
      if (moved !== existing) {
        await link(aside, this.lockPath).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        throw new CheckpointLockedError(this.lockPath, moved.split(' ')[0] || 'unknown');
      }
      await unlink(aside).catch(() => undefined);
    }
    this.lockToken = token;
    heldLocks.set(this.lockPath, token);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', releaseOnExit);
    }
    await this.removeStaleTempFiles();
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
