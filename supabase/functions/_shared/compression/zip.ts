/**
 * Finds the one CSV file inside an uploaded ZIP archive: where its compressed data starts and ends, how it is
 * compressed, and the CRC-32 and size its output must have. The data itself is decompressed by inflate.ts.
 *
 * Invariants:
 * - Only the archive's own directory is trusted: the end-of-central-directory record (searched in the last
 *   64 KiB + 22 bytes, zip64 record through its locator), the central directory, and then the chosen member's
 *   local header, read only for the lengths of its name and extra field (sizes and CRC there may be zero when
 *   the archive was written as a stream with a data descriptor).
 * - Folders, `__MACOSX/…` entries and `.DS_Store` files are not files the user meant; everything else counts.
 * - The result is exactly one deflate (8) or stored (0) member, not encrypted, whose data lies inside the
 *   object; every other case is a CompressionError whose message says what the archive holds and what to do.
 * - Reads are few and bounded: the tail, the zip64 record, the central directory (at most 16 MiB), 30 bytes
 *   of local header.
 * - Names read as the tools that wrote them meant (`entryName`): UTF-8 when the entry says so (flag bit 11), else
 *   the UTF-8 name of an Info-ZIP Unicode Path field (0x7075) made for these very bytes (its CRC-32 matches),
 *   else UTF-8 when the bytes are valid UTF-8 (macOS's Archive Utility writes UTF-8 without the flag), else
 *   IBM code page 437, the format's default (APPNOTE 4.4.4, appendix D; a Windows "Compressed folder" of
 *   `Übersicht.csv`). Names only appear in messages, so a wrong guess costs a garbled name, never data.
 */

import { crc32 } from "./crc32.ts";
import { CompressionError } from "./inflate.ts";

export interface ZipMember {
  name: string;
  method: "deflate" | "stored";
  /** Object offset of the member's compressed data. */
  dataOffset: number;
  compressedSize: number;
  /** Decompressed size from the central directory. */
  size: number;
  crc32: number;
}

/** "gzip" or "zip" from an object's first bytes (4 are enough), else null. */
export function detectCompression(head: Uint8Array): "gzip" | "zip" | null {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b) {
    const kind = head[2] | (head[3] << 8);
    // local file header; empty archive (end record only); spanned-archive marker
    if (kind === 0x0403 || kind === 0x0605 || kind === 0x0807) return "zip";
  }
  return null;
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const MAX_COMMENT = 65535;
const MAX_CENTRAL_DIRECTORY = 16 * 1024 * 1024;

const METHOD_NAMES: Record<number, string> = {
  1: "shrink",
  6: "implode",
  9: "deflate64",
  12: "bzip2",
  14: "LZMA",
  93: "Zstandard",
  95: "XZ",
  96: "JPEG",
  97: "WavPack",
  98: "PPMd",
};

interface CentralEntry {
  name: string;
  flags: number;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  isDirectory: boolean;
  /** Offset of the entry in the object, for messages. */
  at: number;
}

/**
 * Locates the single CSV member of the ZIP archive of `objectSize` bytes; `read(start, end)` returns object
 * bytes [start, end).
 */
export async function locateZipMember(
  read: (start: number, end: number) => Promise<Uint8Array>,
  objectSize: number,
): Promise<ZipMember> {
  const directory = await readDirectory(read, objectSize);
  const files = directory.filter((e) => !e.isDirectory && !isMetadata(e.name));
  if (files.length === 0) {
    throw new CompressionError(
      directory.length === 0 ? "The ZIP archive is empty" : "The ZIP archive holds no files, only folders",
      0,
    );
  }
  const names = files.map((e) => e.name);
  if (names.includes("[Content_Types].xml") && names.some((n) => n.startsWith("xl/"))) {
    const workbook = names.find((n) => /^xl\/workbook\.xml$/i.test(n)) ??
      names.find((n) => n.startsWith("xl/"));
    throw new CompressionError(
      `The upload is an Excel workbook (${workbook}), not a ZIP of a CSV file; export the sheet as CSV`,
      0,
    );
  }
  if (files.length > 1) {
    const shown = names.slice(0, 5).join(", ") + (names.length > 5 ? `, and ${names.length - 5} more` : "");
    throw new CompressionError(
      `The ZIP archive holds ${files.length} files (${shown}); upload a ZIP with one CSV file`,
      files[1].at,
    );
  }
  const entry = files[0];
  if ((entry.flags & 1) !== 0 || entry.method === 99) {
    throw new CompressionError(
      `The ZIP archive is encrypted (${entry.name}); upload it without a password`,
      entry.at,
    );
  }
  if (entry.method !== 8 && entry.method !== 0) {
    const known = METHOD_NAMES[entry.method];
    throw new CompressionError(
      `The ZIP archive uses compression method ${entry.method}${known ? ` (${known})` : ""} for ` +
        `${entry.name}; only deflate and stored are supported`,
      entry.at,
    );
  }
  const local = await readExactly(read, entry.localHeaderOffset, 30, objectSize, "local file header");
  const view = viewOf(local);
  if (view.getUint32(0, true) !== LOCAL_SIGNATURE) {
    throw new CompressionError(
      `The ZIP archive is corrupt: no local file header for ${entry.name} at byte ${entry.localHeaderOffset}`,
      entry.localHeaderOffset,
    );
  }
  const dataOffset = entry.localHeaderOffset + 30 + view.getUint16(26, true) + view.getUint16(28, true);
  if (dataOffset + entry.compressedSize > objectSize) {
    throw new CompressionError(
      `The ZIP archive is truncated: ${entry.name}'s data runs to byte ${
        dataOffset + entry.compressedSize
      } ` +
        `of a ${objectSize}-byte file`,
      objectSize,
    );
  }
  return {
    name: entry.name,
    method: entry.method === 8 ? "deflate" : "stored",
    dataOffset,
    compressedSize: entry.compressedSize,
    size: entry.size,
    crc32: entry.crc32,
  };
}

function isMetadata(name: string): boolean {
  const base = name.slice(name.lastIndexOf("/") + 1);
  return name.startsWith("__MACOSX/") || base === ".DS_Store";
}

async function readDirectory(
  read: (start: number, end: number) => Promise<Uint8Array>,
  objectSize: number,
): Promise<CentralEntry[]> {
  const noEnd = () =>
    new CompressionError(
      "The ZIP archive is truncated or not a ZIP file: its end-of-central-directory record is missing",
      objectSize,
    );
  if (objectSize < EOCD_SIZE) throw noEnd();
  const tailStart = Math.max(0, objectSize - EOCD_SIZE - MAX_COMMENT);
  const tail = await read(tailStart, objectSize);
  const tailView = viewOf(tail);
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (
      tailView.getUint32(i, true) === EOCD_SIGNATURE &&
      i + EOCD_SIZE + tailView.getUint16(i + 20, true) <= tail.length
    ) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw noEnd();
  const eocdAt = tailStart + eocd;
  let disk = tailView.getUint16(eocd + 4, true);
  let directoryDisk = tailView.getUint16(eocd + 6, true);
  let entriesHere = tailView.getUint16(eocd + 8, true);
  let entries = tailView.getUint16(eocd + 10, true);
  let directorySize = tailView.getUint32(eocd + 12, true);
  let directoryOffset = tailView.getUint32(eocd + 16, true);

  if (
    eocd >= ZIP64_LOCATOR_SIZE &&
    tailView.getUint32(eocd - ZIP64_LOCATOR_SIZE, true) === ZIP64_LOCATOR_SIGNATURE
  ) {
    const locator = eocd - ZIP64_LOCATOR_SIZE;
    const recordAt = getUint64(tailView, locator + 8, eocdAt);
    const totalDisks = tailView.getUint32(locator + 16, true);
    if (totalDisks > 1) throw multiDisk(eocdAt);
    const record = await readExactly(read, recordAt, 56, objectSize, "zip64 end-of-central-directory record");
    const view = viewOf(record);
    if (view.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) {
      throw new CompressionError(
        `The ZIP archive is corrupt: no zip64 end-of-central-directory record at byte ${recordAt}`,
        recordAt,
      );
    }
    disk = view.getUint32(16, true);
    directoryDisk = view.getUint32(20, true);
    entriesHere = getUint64(view, 24, recordAt);
    entries = getUint64(view, 32, recordAt);
    directorySize = getUint64(view, 40, recordAt);
    directoryOffset = getUint64(view, 48, recordAt);
  }
  if (disk !== 0 || directoryDisk !== 0 || entriesHere !== entries) throw multiDisk(eocdAt);
  if (entries === 0) return [];
  if (directorySize > MAX_CENTRAL_DIRECTORY) {
    throw new CompressionError(
      `The ZIP archive's directory is ${directorySize} bytes (${entries} entries); ` +
        `upload a ZIP with one CSV file`,
      eocdAt,
    );
  }
  if (directoryOffset + directorySize > objectSize) {
    throw new CompressionError(
      `The ZIP archive is truncated or corrupt: its directory (bytes ${directoryOffset}–` +
        `${directoryOffset + directorySize}) lies past the end of the ${objectSize}-byte file`,
      eocdAt,
    );
  }
  const directory = await read(directoryOffset, directoryOffset + directorySize);
  const view = viewOf(directory);
  const found: CentralEntry[] = [];
  let pos = 0;
  for (let i = 0; i < entries; i++) {
    const at = directoryOffset + pos;
    if (pos + 46 > directory.length || view.getUint32(pos, true) !== CENTRAL_SIGNATURE) {
      throw new CompressionError(`The ZIP archive is corrupt: bad central directory entry at byte ${at}`, at);
    }
    const flags = view.getUint16(pos + 8, true);
    const method = view.getUint16(pos + 10, true);
    const crc32 = view.getUint32(pos + 16, true);
    let compressedSize = view.getUint32(pos + 20, true);
    let size = view.getUint32(pos + 24, true);
    const nameLength = view.getUint16(pos + 28, true);
    const extraLength = view.getUint16(pos + 30, true);
    const commentLength = view.getUint16(pos + 32, true);
    const startDisk = view.getUint16(pos + 34, true);
    const externalAttributes = view.getUint32(pos + 38, true);
    let localHeaderOffset = view.getUint32(pos + 42, true);
    const nameBytes = directory.subarray(pos + 46, pos + 46 + nameLength);
    const extraStart = pos + 46 + nameLength;
    const extraEnd = extraStart + extraLength;
    if (extraEnd + commentLength > directory.length) {
      throw new CompressionError(`The ZIP archive is corrupt: bad central directory entry at byte ${at}`, at);
    }
    const extra = directory.subarray(extraStart, extraEnd);
    const name = entryName(nameBytes, flags, extra);
    // zip64 extended information: 8-byte values, present only for the fields saturated above, in this order.
    const zip64 = extraField(extra, 0x0001);
    if (zip64 !== null) {
      const z = viewOf(zip64);
      let f = 0;
      if (size === 0xffffffff && f + 8 <= zip64.length) size = getUint64(z, f, at), f += 8;
      if (compressedSize === 0xffffffff && f + 8 <= zip64.length) {
        compressedSize = getUint64(z, f, at), f += 8;
      }
      if (localHeaderOffset === 0xffffffff && f + 8 <= zip64.length) localHeaderOffset = getUint64(z, f, at);
    }
    if (startDisk !== 0 && startDisk !== 0xffff) throw multiDisk(at);
    const isDirectory = name.endsWith("/") || name.endsWith("\\") ||
      ((externalAttributes & 0x10) !== 0 && size === 0 && compressedSize <= 2);
    found.push({ name, flags, method, crc32, compressedSize, size, localHeaderOffset, isDirectory, at });
    pos = extraEnd + commentLength;
  }
  return found;
}

/** IBM code page 437's characters for bytes 0x80–0xFF (its lower half is ASCII); zip_test.ts checks it against
 * Python's cp437 codec. */
const CP437_HIGH =
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ";

const UTF8 = new TextDecoder();
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** An entry's name from its raw bytes, flags and extra field (the module doc's order). */
export function entryName(bytes: Uint8Array, flags: number, extra: Uint8Array): string {
  if ((flags & 0x0800) !== 0) return UTF8.decode(bytes);
  // Info-ZIP Unicode Path: version 1, the CRC-32 of the header's name, the UTF-8 name.
  const path = extraField(extra, 0x7075);
  if (
    path !== null && path.length >= 5 && path[0] === 1 && viewOf(path).getUint32(1, true) === crc32(0, bytes)
  ) {
    try {
      return STRICT_UTF8.decode(path.subarray(5));
    } catch {
      // not UTF-8 after all: read the header's name
    }
  }
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    let name = "";
    for (const b of bytes) name += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80];
    return name;
  }
}

/** The data of the first field `id` of an extra field block (id, length, data; cut at the block's end), or null. */
function extraField(extra: Uint8Array, id: number): Uint8Array | null {
  const view = viewOf(extra);
  for (let e = 0; e + 4 <= extra.length; e += 4 + view.getUint16(e + 2, true)) {
    if (view.getUint16(e, true) === id) return extra.subarray(e + 4, e + 4 + view.getUint16(e + 2, true));
  }
  return null;
}

function multiDisk(at: number): CompressionError {
  return new CompressionError(
    "The ZIP archive is split across several files (a multi-disk or spanned archive); upload it as one ZIP",
    at,
  );
}

async function readExactly(
  read: (start: number, end: number) => Promise<Uint8Array>,
  start: number,
  length: number,
  objectSize: number,
  what: string,
): Promise<Uint8Array> {
  if (start + length > objectSize) {
    throw new CompressionError(
      `The ZIP archive is truncated or corrupt: its ${what} at byte ${start} lies past the end of the file`,
      start,
    );
  }
  const bytes = await read(start, start + length);
  if (bytes.length < length) {
    throw new CompressionError(
      `The ZIP archive is truncated: the ${what} at byte ${start} is cut short`,
      start,
    );
  }
  return bytes;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A little-endian 64-bit value; offsets and sizes past 2^53 cannot be real here. */
function getUint64(view: DataView, pos: number, at: number): number {
  const value = view.getBigUint64(pos, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CompressionError(
      `The ZIP archive is corrupt: a zip64 size or offset near byte ${at} is too large`,
      at,
    );
  }
  return Number(value);
}
