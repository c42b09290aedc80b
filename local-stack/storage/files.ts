/**
 * Object bytes on local disk: one file per object version at `<rootDir>/<bucket dir>/<version uuid>`.
 *
 * Invariants:
 * - Paths are derived only from the bucket id (percent-encoded, so `.`/`..`/`/` cannot form a path segment)
 *   and a version uuid (validated); object names never reach the filesystem, so no name can escape rootDir.
 * - A version file is written once (`createNew`) and never modified; an overwrite is a new version.
 * - Writes stream in bounded chunks, hash (MD5 → the S3-style ETag) and count as they go, and stop as soon
 *   as the byte limit is exceeded; a failed write removes its partial file.
 * - Reads stream a byte range with seek + bounded chunk reads; memory stays O(chunk) for any file size.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ERRORS } from "./errors.ts";
import { isUuid } from "./names.ts";

const READ_CHUNK = 1 << 20;

export interface Written {
  size: number;
  md5: string;
  mtime: Date;
}

/** Percent-encodes a bucket id into one safe directory name (also `.`, `*`, `!`, `'`, `(`, `)`, `~`). */
export function bucketDirName(bucketId: string): string {
  return encodeURIComponent(bucketId).replace(
    /[.!~*'()]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export class FileStore {
  constructor(readonly rootDir: string) {}

  pathOf(bucketId: string, version: string): string {
    if (!isUuid(version)) throw ERRORS.storedBytesMissing();
    return join(this.rootDir, bucketDirName(bucketId), version);
  }

  /** Streams `body` into a new version file; throws EntityTooLarge past `limit` bytes. */
  async write(bucketId: string, version: string, body: ReadableStream<Uint8Array>, limit: number) {
    const path = this.pathOf(bucketId, version);
    await Deno.mkdir(join(this.rootDir, bucketDirName(bucketId)), { recursive: true });
    const file = await Deno.open(path, { write: true, createNew: true });
    const hash = createHash("md5");
    let size = 0;
    try {
      for await (const chunk of body) {
        size += chunk.byteLength;
        if (size > limit) throw ERRORS.entityTooLarge();
        hash.update(chunk);
        for (let off = 0; off < chunk.byteLength;) off += await file.write(chunk.subarray(off));
      }
      const { mtime } = await file.stat();
      return { size, md5: hash.digest("hex"), mtime: mtime ?? new Date() } satisfies Written;
    } catch (e) {
      await Deno.remove(path).catch(() => {});
      throw e;
    } finally {
      file.close();
    }
  }

  /** Streams bytes `start..end` (inclusive) of a version file. */
  async read(
    bucketId: string,
    version: string,
    start: number,
    end: number,
  ): Promise<ReadableStream<Uint8Array>> {
    const file = await this.#open(bucketId, version);
    if (start > 0) await file.seek(start, Deno.SeekMode.Start);
    let remaining = end - start + 1;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const buf = new Uint8Array(Math.min(READ_CHUNK, remaining));
          const n = remaining > 0 ? await file.read(buf) : null;
          if (n === null) {
            file.close();
            controller.close();
            return;
          }
          remaining -= n;
          controller.enqueue(n === buf.byteLength ? buf : buf.subarray(0, n));
        } catch (e) {
          file.close();
          controller.error(e);
        }
      },
      cancel() {
        file.close();
      },
    }, { highWaterMark: 0 });
  }

  async size(bucketId: string, version: string): Promise<number> {
    try {
      return (await Deno.stat(this.pathOf(bucketId, version))).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw ERRORS.storedBytesMissing();
      throw e;
    }
  }

  async copy(from: { bucketId: string; version: string }, to: { bucketId: string; version: string }) {
    await Deno.mkdir(join(this.rootDir, bucketDirName(to.bucketId)), { recursive: true });
    try {
      await Deno.copyFile(this.pathOf(from.bucketId, from.version), this.pathOf(to.bucketId, to.version));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw ERRORS.storedBytesMissing();
      throw e;
    }
  }

  /** A second name for a version file (a hard link, else a copy): it outlives the removal of the first. */
  async link(from: { bucketId: string; version: string }, to: { bucketId: string; version: string }) {
    await Deno.mkdir(join(this.rootDir, bucketDirName(to.bucketId)), { recursive: true });
    const source = this.pathOf(from.bucketId, from.version);
    const target = this.pathOf(to.bucketId, to.version);
    try {
      await Deno.link(source, target).catch(() => Deno.copyFile(source, target));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw ERRORS.storedBytesMissing();
      throw e;
    }
  }

  /** Removes a version file; missing files and non-uuid versions are ignored. */
  async remove(bucketId: string, version: string | null | undefined): Promise<void> {
    if (!isUuid(version)) return;
    await Deno.remove(this.pathOf(bucketId, version!)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }

  async #open(bucketId: string, version: string): Promise<Deno.FsFile> {
    try {
      return await Deno.open(this.pathOf(bucketId, version), { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw ERRORS.storedBytesMissing();
      throw e;
    }
  }
}
