/**
 * A tiny ZIP writer for tests: real archives (local headers, central directory, end record) built in memory, so a
 * test can make a workbook-shaped archive or a ZIP of a CSV without the `zip` CLI and get the same bytes every run.
 *
 * Invariants:
 * - Deterministic: a fixed DOS time and date (1980-01-01 00:00), no extra fields, no data descriptors; entries in
 *   the order given.
 * - `stored` (method 0) copies the bytes; `deflate` (method 8) is raw deflate from CompressionStream; the CRC-32 is
 *   the pipeline's own (compression/crc32.ts), which matches zlib's.
 * - No zip64: entries and the archive stay far below 4 GiB in tests.
 */
import { crc32 } from "../../supabase/functions/_shared/compression/crc32.ts";
import { concat } from "../../supabase/functions/_shared/compression/test_support.ts";

export interface ZipEntry {
  name: string;
  bytes: Uint8Array;
  method?: "stored" | "deflate";
}

const DOS_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1;

async function deflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The archive of `entries` (names are written as UTF-8, flag bit 11). */
export async function zipArchive(entries: ZipEntry[]): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const method = entry.method === "deflate" ? 8 : 0;
    const data = method === 8 ? await deflateRaw(entry.bytes) : entry.bytes;
    const name = enc.encode(entry.name);
    const crc = crc32(0, entry.bytes);

    const local = new Uint8Array(30 + name.length + data.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true); // version needed: 2.0
    lv.setUint16(6, 1 << 11, true); // UTF-8 names
    lv.setUint16(8, method, true);
    lv.setUint16(10, 0, true); // time 00:00
    lv.setUint16(12, DOS_DATE_1980_01_01, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, entry.bytes.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 0, true);
    local.set(name, 30);
    local.set(data, 30 + name.length);
    locals.push(local);

    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true); // made by: 2.0, MS-DOS
    cv.setUint16(6, 20, true);
    cv.setUint16(8, 1 << 11, true);
    cv.setUint16(10, method, true);
    cv.setUint16(12, 0, true);
    cv.setUint16(14, DOS_DATE_1980_01_01, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, entry.bytes.length, true);
    cv.setUint16(28, name.length, true);
    // extra length, comment length, disk, internal and external attributes: 0
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    centrals.push(central);
    offset += local.length;
  }
  const directorySize = centrals.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, directorySize, true);
  ev.setUint32(16, offset, true);
  return concat([...locals, ...centrals, end]);
}
