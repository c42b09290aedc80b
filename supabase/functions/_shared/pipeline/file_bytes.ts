/**
 * What registration reads of an upload: its data, whether plain or compressed (issue 16). A plain file is read
 * from Storage by range; a `.csv.gz` (one or more gzip members) or a `.zip` holding one CSV member is recognised by
 * its magic bytes, whatever its name, and its data's first bytes (`prefixBytes`) are inflated once and served from
 * memory: sniffing, the header, the first record and a table made from the file all read that prefix.
 *
 * Invariants:
 * - Every Storage read carries the ETag of the job's object version.
 * - Offsets are offsets of the data: the object's bytes for a plain file, the decompressed bytes for a compressed
 *   one (whose plan then names its stream: `compression`).
 * - `complete` is true only when `size` is where the data ends: a plain file, or a compressed one that inflated to
 *   its end within the prefix; a reader must not take the prefix's end for the data's end otherwise.
 * - A ZIP archive that is not exactly one CSV member, a corrupt or truncated stream, fails with CompressionError
 *   (the file's fault): its message names what was found and where.
 */
import {
  type Codec,
  CompressionError,
  inflateFrom,
  resumeByte,
  startCheckpoint,
} from "../compression/inflate.ts";
import { detectCompression, locateZipMember } from "../compression/zip.ts";
import type { StorageClient } from "../platform/storage.ts";
import type { JobCompression, ObjectVersion } from "./chunk_context.ts";
import { compressedBytes } from "./compressed_reads.ts";

/** A compressed upload's stream, as the plan stores it (the limits are added by the plan). */
export type CompressedStream = Pick<
  JobCompression,
  "codec" | "data_offset" | "data_end" | "member" | "expected"
>;

export interface FileBytes {
  /** Bytes that can be read: the object's size, or the decompressed prefix of a compressed file. */
  readonly size: number;
  /** Whether `size` is the end of the data. */
  readonly complete: boolean;
  /** A compressed file's stream (null: plain), and how much of the object its prefix took. */
  readonly compression: (CompressedStream & { prefixIn: number }) | null;
  read(start: number, end: number): Promise<Uint8Array>;
}

type ObjectRef = Pick<ObjectVersion, "bucket" | "name" | "etag" | "size">;

/**
 * Opens the upload: one read of its head (`headBytes`) tells plain from compressed; a plain file's head is served
 * from memory after that, a compressed file's data prefix (up to `prefixBytes`) is inflated here.
 */
export async function openFileBytes(
  storage: StorageClient,
  object: ObjectRef,
  opts: { headBytes: number; prefixBytes: number },
): Promise<FileBytes> {
  const version = { etag: object.etag };
  const readObject = (start: number, end: number) =>
    storage.readBytes(object.bucket, object.name, start, end, version);
  const head = await readObject(0, Math.min(object.size, opts.headBytes));
  const kind = detectCompression(head);
  if (kind === null) {
    return {
      size: object.size,
      complete: true,
      compression: null,
      read: (start, end) =>
        end <= head.byteLength ? Promise.resolve(head.slice(start, end)) : readObject(start, end),
    };
  }
  const stream: CompressedStream = kind === "gzip"
    ? { codec: "gzip", data_offset: 0, data_end: object.size, member: null, expected: null }
    : await zipStream(readObject, object.size);
  return await inflatePrefix(storage, object, stream, opts.prefixBytes, head);
}

async function zipStream(
  read: (start: number, end: number) => Promise<Uint8Array>,
  size: number,
): Promise<CompressedStream> {
  const member = await locateZipMember(read, size);
  const codec: Codec = member.method === "stored" ? "stored" : "deflate";
  return {
    codec,
    data_offset: member.dataOffset,
    data_end: member.dataOffset + member.compressedSize,
    member: member.name,
    expected: { crc32: member.crc32, size: member.size },
  };
}

/** Inflates the first `prefixBytes` of the data (all of it when it is shorter, checked to its end). */
async function inflatePrefix(
  storage: StorageClient,
  object: ObjectRef,
  stream: CompressedStream,
  prefixBytes: number,
  head: Uint8Array,
): Promise<FileBytes> {
  const from = startCheckpoint(stream.codec, stream.data_offset);
  const consumed = { bytes: 0 };
  // The head already read starts the input: only what lies past it is read again.
  const start = resumeByte(from);
  const known = head.subarray(Math.min(start, head.byteLength), Math.min(stream.data_end, head.byteLength));
  async function* input(): AsyncGenerator<Uint8Array> {
    if (known.byteLength > 0) {
      consumed.bytes += known.byteLength;
      yield known;
    }
    const rest = { from: start + known.byteLength, end: stream.data_end, firstEnd: null };
    yield* compressedBytes(storage, object, rest, 256 * 1024, consumed);
  }
  const events = inflateFrom(stream.codec, from, input(), {
    end: stream.data_end,
    expected: stream.expected ?? undefined,
  });
  const prefix = new Uint8Array(prefixBytes);
  let length = 0;
  let complete = false;
  for await (const event of events) {
    if (event.kind === "end") {
      complete = true;
      break;
    }
    if (event.kind !== "data") continue;
    const take = Math.min(event.bytes.byteLength, prefixBytes - length);
    prefix.set(event.bytes.subarray(0, take), length);
    length += take;
    if (length >= prefixBytes) break;
  }
  if (length === 0 && complete) throw new CompressionError(`The ${describe(stream)} holds no data`, from.in);
  const data = prefix.subarray(0, length);
  return {
    size: length,
    complete,
    compression: { ...stream, prefixIn: consumed.bytes },
    read: (start, end) => Promise.resolve(data.slice(start, Math.min(end, length))),
  };
}

function describe(stream: CompressedStream): string {
  return stream.codec === "gzip" ? "gzip file" : `ZIP archive's member ${stream.member}`;
}
