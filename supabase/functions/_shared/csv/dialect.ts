/**
 * Dialect sniffing from a file's head (its first {@link SNIFF_BYTES} bytes, or all of it if smaller).
 *
 * Order of checks, first failure wins (each throws a {@link CsvError} with a message for the uploader):
 * 1. empty file; 2. magic numbers of compressed or binary formats (gzip, zip/xlsx, bzip2, xz, zstd, 7z, PDF,
 * legacy Office); 3. UTF-32 / UTF-16 byte-order marks; 4. UTF-16 without BOM (NULs in every other byte);
 * 5. control bytes (NUL included) in bulk: binary; 6. any NUL byte (with its line and offset: PostgreSQL text
 * cannot hold one); 7. invalid UTF-8 (with the offending byte, its line and offset, the likely encoding and the
 * profile setting that reads it), unless the caller names a single-byte encoding (csv/encoding.ts), which reads
 * every byte: then a UTF-8 BOM, or text above ASCII that is valid UTF-8 throughout, is refused instead (the file
 * is UTF-8, and would load as "Ã©"). Lines are physical lines
 * (LF, CRLF or a lone CR each end one). A UTF-8 BOM is accepted and skipped: `bomLength` is 3 and `dataStart`
 * accounts for it. A complete head that ends inside a quoted field fails with the line the field starts on.
 *
 * Then the syntax, every choice made with the same quote-parity rule the loader uses:
 * - quote: `"`, unless `"` never appears next to a delimiter or line break while `'` does at least 4 times
 *   and `'` splits the sample at least as consistently;
 * - newline: the first CR or LF at even quote parity: CR LF → CRLF, CR alone → CR, LF → LF;
 * - delimiter among `,` `;` TAB `|`: the one whose sampled records (complete records only) have the most
 *   consistent field count (share of records with the most common count, which must be > 1); ties and
 *   single-column files → the earlier in that order, so comma wins ties;
 * - header (unless the caller says): yes when the first record's fields are non-empty and untyped (not
 *   numbers, dates or booleans) and either some column holds typed values in most later records, or nothing
 *   is typed at all and the names are distinct (ambiguous: most exports have a header); also yes when some
 *   fields are empty but the others are untyped and one of those stands above numbers or dates in most later
 *   records (an unnamed index column, `,a,b` from pandas: DuckDB's sniffer says header too). `dataStart` is then the offset just past
 *   the header's terminator (blank lines before the header are skipped), else the offset after the BOM.
 *   `headerReason` says in a sentence fragment why ("its first row has an empty field (field 3)"), and
 *   `firstRecord` keeps that record, so that a caller who knows more (the target table's column names: see
 *   register.ts) can decide otherwise with {@link withHeaderDecision} and still explain itself.
 */

import { CsvError } from "./errors.ts";
import type { CsvFormat, Newline } from "./format.ts";
import { createRecordParser, type CsvRecord } from "./parser.ts";
import { encodingName, type FileEncoding, guessSingleByteEncoding, textCodec } from "./encoding.ts";
import { Utf16Narrower } from "./utf16.ts";
import { hexByte, scanUtf8 } from "./utf8.ts";

/** How many head bytes the sniffer wants. */
export const SNIFF_BYTES = 64 * 1024;

export interface Dialect extends CsvFormat {
  readonly encoding: FileEncoding;
  /** 3 after a UTF-8 byte-order mark, 2 after a UTF-16 one, else 0. */
  readonly bomLength: 0 | 2 | 3;
  readonly hasHeader: boolean;
  /** Header names (an empty or NULL name is ""), or null without a header. */
  readonly header: string[] | null;
  /** Absolute offset of the first data record. */
  readonly dataStart: number;
  /** Terminator bytes before `dataStart`: the first data record is on line `linesBeforeData + 1` or later. */
  readonly linesBeforeData: number;
  /** Why the first record is (or is not) the header, as a fragment: "its first row has an empty field (3)". */
  readonly headerReason: string;
  /** The first record of the file (the header candidate), or null when the head holds no complete record. */
  readonly firstRecord: FirstRecord | null;
}

/** The first record of a file, with where data starts if it is the header. */
export interface FirstRecord {
  /** Its fields, an empty or NULL field as "". */
  readonly fields: string[];
  /** Its content length in bytes, without the terminator (what MAX_RECORD_BYTES limits). */
  readonly byteLength: number;
  /** Physical line it starts on (blank lines before it are skipped). */
  readonly line: number;
  /** Offset just past its terminator: `dataStart` when it is the header. */
  readonly nextOffset: number;
  /** Terminator bytes up to `nextOffset`: `linesBeforeData` when it is the header. */
  readonly linesThrough: number;
}

export interface SniffOptions {
  /** Total file size; tells whether `head` is the whole file. Default: whole file iff head < SNIFF_BYTES. */
  readonly fileSize?: number;
  /** The caller knows whether there is a header row. */
  readonly hasHeader?: boolean;
  readonly delimiter?: string;
  readonly quote?: string;
  /** The file's encoding, when the caller knows it (the profile's): default UTF-8. */
  readonly encoding?: FileEncoding;
}

const DELIMITERS = [",", ";", "\t", "|"] as const;

interface Magic {
  readonly bytes: readonly number[];
  readonly code: "compressed" | "binary";
  readonly message: string;
  /** Further check for magic numbers short enough to be plausible text. */
  readonly also?: (head: Uint8Array) => boolean;
}

const MAGIC: readonly Magic[] = [
  {
    bytes: [0x1f, 0x8b],
    code: "compressed",
    message: "File is gzip-compressed",
  },
  {
    bytes: [0x50, 0x4b, 0x03, 0x04],
    code: "binary",
    message:
      "File is a ZIP archive (an Excel .xlsx workbook is one); export the sheet as CSV and upload that",
  },
  {
    bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    code: "compressed",
    message: "File is xz-compressed; upload the CSV as it is, gzipped (.csv.gz) or in a ZIP archive",
  },
  {
    bytes: [0x28, 0xb5, 0x2f, 0xfd],
    code: "compressed",
    message: "File is zstd-compressed; upload the CSV as it is, gzipped (.csv.gz) or in a ZIP archive",
  },
  {
    bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c],
    code: "compressed",
    message: "File is a 7-Zip archive; upload the CSV as it is, gzipped (.csv.gz) or in a ZIP archive",
  },
  {
    bytes: [0x42, 0x5a, 0x68], // "BZh", then the level digit and the block magic
    code: "compressed",
    message: "File is bzip2-compressed; upload the CSV as it is, gzipped (.csv.gz) or in a ZIP archive",
    also: (head) =>
      head[3] >= 0x31 && head[3] <= 0x39 && startsWith(head, [0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 4),
  },
  { bytes: [0x25, 0x50, 0x44, 0x46, 0x2d], code: "binary", message: "File is a PDF document, not CSV text" },
  {
    bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1],
    code: "binary",
    message: "File is a legacy Office document (e.g. Excel .xls); export the sheet as CSV and upload that",
  },
];

function startsWith(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
  if (head.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[at + i] !== bytes[i]) return false;
  return true;
}

/** Physical line (1-based) of `offset`: line breaks before it, LF, CRLF and a lone CR each counting one. */
function lineAt(head: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) {
    if (head[i] === 0x0a || (head[i] === 0x0d && head[i + 1] !== 0x0a)) line++;
  }
  return line;
}

/** The text's structure for the syntax sniffing: the head itself, or for UTF-16 its narrowed units (utf16.ts). */
interface Structure {
  readonly view: Uint8Array;
  /** Where the text starts in `view` (after a byte-order mark). */
  readonly from: number;
}

/** Counts control characters other than TAB, LF, FF, CR and ESC: many of them in a head mean binary data. */
function controlCount(view: Uint8Array, from: number): number {
  let controls = 0;
  for (let i = from; i < view.length; i++) {
    const c = view[i];
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c && c !== 0x1b) controls++;
  }
  return controls;
}

function binary(controls: number, length: number): CsvError {
  return new CsvError(
    "binary",
    `File looks like binary data (${controls} control bytes in its first ${length} bytes), not CSV`,
  );
}

/**
 * A UTF-16 head (after its byte-order mark, if any): binary data and NUL characters are refused as in UTF-8, on
 * the code units; a complete file of odd length ends inside a character.
 */
function checkUtf16(
  head: Uint8Array,
  bom: 0 | 2,
  encoding: "utf-16le" | "utf-16be",
  complete: boolean,
): { bom: 0 | 2; encoding: FileEncoding; structure: Structure } {
  const { narrow } = new Utf16Narrower(encoding === "utf-16be").push(head.subarray(bom));
  const controls = controlCount(narrow, 0);
  if (controls > 8 && controls * 100 > narrow.length) throw binary(controls, head.length);
  const nul = narrow.indexOf(0);
  if (nul !== -1) {
    const line = lineAt(narrow, nul);
    const offset = bom + 2 * nul;
    throw new CsvError(
      "nul_byte",
      `File contains a NUL character at line ${line} (offset ${offset}); remove it and upload again`,
      offset,
      line,
    );
  }
  if (complete && (head.length - bom) % 2 === 1) {
    throw new CsvError(
      "truncated_utf16",
      `File ends in the middle of a UTF-16 character (its length, ${head.length} bytes, is odd)`,
      head.length - 1,
    );
  }
  return { bom, encoding, structure: { view: narrow, from: 0 } };
}

function checkEncoding(
  head: Uint8Array,
  complete: boolean,
  requested: FileEncoding,
): { bom: 0 | 2 | 3; encoding: FileEncoding; structure: Structure } {
  if (head.length === 0) throw new CsvError("empty_file", "File is empty");
  for (const m of MAGIC) {
    if (startsWith(head, m.bytes) && (m.also === undefined || m.also(head))) {
      throw new CsvError(m.code, m.message, 0);
    }
  }
  if (startsWith(head, [0xff, 0xfe, 0x00, 0x00]) || startsWith(head, [0x00, 0x00, 0xfe, 0xff])) {
    throw new CsvError("utf32", "File is UTF-32 encoded; save it as UTF-8 and upload again", 0);
  }
  if (startsWith(head, [0xff, 0xfe]) || startsWith(head, [0xfe, 0xff])) {
    // A UTF-16 byte-order mark says what the file is, whatever a UTF-8 profile assumed.
    const found = head[0] === 0xff ? "utf-16le" : "utf-16be";
    if (requested !== "utf-8" && requested !== found) {
      throw new CsvError(
        "wrong_encoding",
        `File starts with a ${encodingName(found)} byte-order mark, but its profile says it is ` +
          `${
            encodingName(requested)
          }: set the profile's encoding to ${found} (or utf-8: a byte-order mark is ` +
          "followed)",
        0,
        1,
      );
    }
    return checkUtf16(head, 2, found, complete);
  }
  if (requested === "utf-16le" || requested === "utf-16be") return checkUtf16(head, 0, requested, complete);
  const bom = startsWith(head, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  const structure = { view: head, from: bom };
  const nul = head.indexOf(0);
  if (nul !== -1) {
    // UTF-16 without BOM: ASCII text leaves NULs in (nearly) every even or every odd position.
    const n = Math.min(head.length, 256);
    const nuls = [0, 0];
    for (let i = 0; i < n; i++) if (head[i] === 0) nuls[i & 1]++;
    if (n >= 4 && Math.max(nuls[0], nuls[1]) * 10 >= (n >> 1) * 8) {
      // ASCII in little-endian order leaves the NUL second (odd offsets).
      const likely = nuls[1] >= nuls[0] ? "utf-16le" : "utf-16be";
      throw new CsvError(
        "utf16",
        `File looks like ${
          encodingName(likely)
        } without a byte-order mark (every other byte is NUL): set the ` +
          `profile's encoding to ${likely}, or save it as UTF-8 and upload again`,
        nul,
      );
    }
  }
  const controls = controlCount(head, 0);
  if (controls > 8 && controls * 100 > head.length) throw binary(controls, head.length);
  if (nul !== -1) {
    const line = lineAt(head, nul);
    throw new CsvError(
      "nul_byte",
      `File contains a NUL byte at line ${line} (offset ${nul}); remove it and upload again`,
      nul,
      line,
    );
  }
  if (requested !== "utf-8") {
    const said = `its profile says it is ${encodingName(requested)}: set the profile's encoding to utf-8`;
    if (bom > 0) {
      throw new CsvError("wrong_encoding", `File starts with a UTF-8 byte-order mark, but ${said}`, 0, 1);
    }
    // Text above ASCII that is valid UTF-8 throughout is UTF-8 (a single-byte text almost never is: é would have
    // to be followed by a continuation byte, e.g. "Ã©"); read as Windows-1252 it would load as "Ã©" unnoticed.
    const high = head.findIndex((b) => b >= 0x80);
    const u = high === -1 ? null : scanUtf8(head, high);
    if (u !== null && u.invalidAt === -1) {
      const end = high + (head[high] >= 0xf0 ? 4 : head[high] >= 0xe0 ? 3 : 2);
      throw new CsvError(
        "wrong_encoding",
        `File looks like UTF-8 text (its first bytes above ASCII, at line ${lineAt(head, high)}, are ` +
          `"${textCodec("utf-8").lossy(head.subarray(high, end))}" in UTF-8), but ${said}`,
        high,
        lineAt(head, high),
      );
    }
    return { bom: 0, encoding: requested, structure: { view: head, from: 0 } };
  }
  const u = scanUtf8(head, bom);
  const bad = u.invalidAt !== -1 ? u.invalidAt : complete ? u.incompleteAt : -1;
  if (bad !== -1) {
    const line = lineAt(head, bad);
    const likely = guessSingleByteEncoding(head);
    const shown = textCodec(likely).lossy(head.subarray(bad, bad + 1));
    throw new CsvError(
      "invalid_utf8",
      `File is not UTF-8 text: invalid byte ${hexByte(head[bad])} at line ${line} (offset ${bad}). ` +
        `It looks like ${encodingName(likely)}, where that byte is "${shown}": set the profile's encoding ` +
        `to ${likely} (csv-import profiles add … --encoding ${likely}), or save the file as UTF-8 and upload again`,
      bad,
      line,
    );
  }
  return { bom, encoding: "utf-8", structure };
}

/** First CR or LF at even parity of `quote`, from `from`; null if none in the head. */
function detectNewline(head: Uint8Array, from: number, quote: number, complete: boolean): Newline | null {
  let parity = 0;
  for (let i = from; i < head.length; i++) {
    const c = head[i];
    if (c === quote) parity ^= 1;
    else if (parity === 0 && c === 0x0a) return "\n";
    else if (parity === 0 && c === 0x0d) {
      if (i + 1 < head.length) return head[i + 1] === 0x0a ? "\r\n" : "\r";
      return complete ? "\r" : "\r\n";
    }
  }
  return null;
}

/**
 * Complete records of the head under a candidate format (the last, possibly cut-off, one is dropped), or the
 * error that makes the candidate unfit (an unterminated quote in a complete file).
 */
function sample(
  head: Uint8Array,
  from: number,
  format: CsvFormat,
  complete: boolean,
): CsvRecord[] | CsvError {
  const parser = createRecordParser({ format, maxRecordBytes: head.length, startOffset: from });
  try {
    const records = parser.push(head.subarray(from));
    if (complete) records.push(...parser.finish());
    return records;
  } catch (error) {
    if (error instanceof CsvError) return error;
    throw error;
  }
}

function consistency(records: readonly CsvRecord[]): number {
  const counts = new Map<number, number>();
  for (const r of records) counts.set(r.fields.length, (counts.get(r.fields.length) ?? 0) + 1);
  let mode = 0;
  let best = 0;
  for (const [fields, n] of counts) if (n > best || (n === best && fields > mode)) [mode, best] = [fields, n];
  return mode > 1 ? best / records.length : 0;
}

/** Counts quote bytes adjacent to a delimiter candidate or line break (how a quoting character is used). */
function boundaryQuotes(head: Uint8Array, from: number, quote: number): number {
  const isBoundary = (c: number) =>
    c === 0x2c || c === 0x3b || c === 0x09 || c === 0x7c || c === 0x0a || c === 0x0d;
  let n = 0;
  for (let i = from; i < head.length; i++) {
    if (head[i] !== quote) continue;
    if (i === from || isBoundary(head[i - 1])) n++;
    if (i + 1 < head.length && isBoundary(head[i + 1])) n++;
  }
  return n;
}

const NUMBER_OR_DATE = [
  /^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?%?$/, // numbers
  /^[-+]?[$€£¥]?\d{1,3}([,. ]\d{3})+([.,]\d+)?$/, // grouped numbers / money
  /^\d{4}-\d{1,2}-\d{1,2}([T ].*)?$/, // ISO dates and timestamps
  /^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}( .*)?$/, // local dates
  /^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$/, // times
];
const BOOLEAN = /^(true|false|t|f|yes|no|y|n)$/i;

/** A value that cannot be a column name. Booleans can (columns named "y", "n", "yes"...), so only data counts them. */
function isTyped(value: string | null, inData: boolean): boolean {
  if (value === null) return false;
  const v = value.trim();
  return v !== "" && (NUMBER_OR_DATE.some((re) => re.test(v)) || (inData && BOOLEAN.test(v)));
}

/**
 * A first row with empty fields is still the header when its other fields are names and one of them stands
 * above numbers or dates in most later rows: an unnamed index column (pandas' `to_csv()` writes `,a,b`), a
 * name left blank. Booleans do not count here (a `y` below is too weak to outweigh the missing name). Null
 * when that is not the case.
 */
function headerWithEmptyNames(
  records: readonly CsvRecord[],
  firstEmpty: number,
): { header: boolean; reason: string } | null {
  const first = records[0].fields;
  const rows = records.slice(1);
  if (rows.length === 0) return null;
  for (let col = 0; col < first.length; col++) {
    const name = first[col];
    if (name === null || name.trim() === "") continue;
    let typed = 0;
    for (const r of rows) if (isTyped(r.fields[col] ?? null, false)) typed++;
    if (typed * 2 > rows.length) {
      return {
        header: true,
        reason:
          `its first row holds names and no numbers or dates, above numbers or dates in column ${col + 1} ` +
          `(field ${firstEmpty + 1} of ${first.length} has no name)`,
      };
    }
  }
  return null;
}

/** Whether the first record is a header by its looks alone, and why, as a sentence fragment. */
function headerVerdict(records: readonly CsvRecord[]): { header: boolean; reason: string } {
  const first = records[0].fields;
  const names = new Set<string>();
  let firstEmpty = -1;
  const emptyField = (i: number) => ({
    header: false,
    reason: `its first row has an empty field (field ${i + 1} of ${first.length})`,
  });
  for (let i = 0; i < first.length; i++) {
    const f = first[i];
    if (f === null || f.trim() === "") {
      if (firstEmpty === -1) firstEmpty = i;
      continue;
    }
    if (isTyped(f, false)) {
      if (firstEmpty !== -1) return emptyField(firstEmpty);
      return {
        header: false,
        reason: `field ${i + 1} of its first row ("${f.trim()}") is a number, date or time, not a name`,
      };
    }
    names.add(f.trim().toLowerCase());
  }
  if (firstEmpty !== -1) return headerWithEmptyNames(records, firstEmpty) ?? emptyField(firstEmpty);
  // Repeated names only decide when nothing else does: a header with a duplicate name above typed data is
  // still a header (the column mapping then names the duplicate).
  const distinct = names.size === first.length;
  const rows = records.slice(1);
  const untypedNames = "its first row holds only names (no empty fields, numbers or dates)";
  if (rows.length === 0) {
    return distinct
      ? { header: true, reason: `${untypedNames} and is the only row sampled` }
      : { header: false, reason: "its first row, the only one sampled, repeats a value" };
  }
  let anyTyped = false;
  for (let col = 0; col < first.length; col++) {
    let typed = 0;
    for (const r of rows) if (isTyped(r.fields[col] ?? null, true)) typed++;
    if (typed * 2 > rows.length) {
      return { header: true, reason: `${untypedNames}, above typed values in column ${col + 1}` };
    }
    if (typed > 0) anyTyped = true;
  }
  if (anyTyped) {
    return { header: false, reason: "its first row is text like the rows below it, which are partly typed" };
  }
  return distinct
    ? { header: true, reason: `${untypedNames}, all distinct (nothing below is typed either)` }
    : { header: false, reason: "its first row repeats a value and nothing below it is typed" };
}

/** True when some field of a row is a number, date, time or boolean: a data row, not a header. */
export function looksLikeData(fields: readonly (string | null)[]): boolean {
  return fields.some((f) => isTyped(f, true));
}

/**
 * Sniffs the dialect of a file from its head. Throws {@link CsvError} when the head shows the file is not
 * UTF-8 CSV text, or when its first record does not end within the head.
 */
export function sniffDialect(head: Uint8Array, options: SniffOptions = {}): Dialect {
  const complete = options.fileSize !== undefined
    ? head.length >= options.fileSize
    : head.length < SNIFF_BYTES;
  const checked = checkEncoding(head, complete, options.encoding ?? "utf-8");
  const { encoding, structure } = checked;
  const bomLength = checked.bom;

  let quotes: string[] = ['"'];
  if (options.quote !== undefined) quotes = [options.quote];
  else if (
    boundaryQuotes(structure.view, structure.from, 0x22) === 0 &&
    boundaryQuotes(structure.view, structure.from, 0x27) >= 4
  ) {
    quotes = ['"', "'"];
  }
  const delimiters = options.delimiter !== undefined ? [options.delimiter] : DELIMITERS;

  let best: { format: CsvFormat; records: CsvRecord[]; score: number } | null = null;
  let unfit: CsvError | null = null;
  for (const quote of quotes) {
    const newline = detectNewline(structure.view, structure.from, quote.charCodeAt(0), complete);
    if (newline === null && !complete) {
      throw new CsvError(
        "header_too_long",
        `No line break in the first ${head.length} bytes: the first row is too long, or this is not a CSV file`,
      );
    }
    for (const delimiter of delimiters) {
      const format: CsvFormat = { delimiter, quote, newline: newline ?? "\n", encoding };
      const records = sample(head, bomLength, format, complete);
      if (records instanceof CsvError) {
        unfit ??= records;
        continue;
      }
      const score = consistency(records);
      if (best === null || score > best.score) best = { format, records, score };
    }
  }
  if (best === null) {
    // Every candidate ends inside quotes: the quote parity does not depend on the delimiter, so the first
    // candidate's error names the line where the unterminated field starts, as the chunk parser would.
    const e = unfit!;
    throw new CsvError(e.code, e.message.charAt(0).toUpperCase() + e.message.slice(1), e.offset, e.line);
  }

  const { format, records } = best;
  if (records.length === 0 && !complete) {
    throw new CsvError("header_too_long", `The first row does not end within the first ${head.length} bytes`);
  }
  const verdict = records.length === 0
    ? { header: false, reason: "the file has no complete row" }
    : options.hasHeader !== undefined
    ? { header: options.hasHeader, reason: "the caller says so" }
    : headerVerdict(records);
  let firstRecord: FirstRecord | null = null;
  if (records.length > 0) {
    const headerParser = createRecordParser({
      format,
      maxRecordBytes: head.length,
      startOffset: bomLength,
      stopAt: records[0].offset + 1,
    });
    headerParser.push(head.subarray(bomLength));
    if (!headerParser.done) headerParser.finish();
    firstRecord = {
      fields: records[0].fields.map((f) => f ?? ""),
      byteLength: records[0].byteLength,
      line: records[0].line,
      nextOffset: headerParser.nextOffset,
      linesThrough: headerParser.nextLine - 1,
    };
  }
  const base: Dialect = {
    ...format,
    encoding,
    bomLength,
    hasHeader: false,
    header: null,
    dataStart: bomLength,
    linesBeforeData: 0,
    headerReason: verdict.reason,
    firstRecord,
  };
  return withHeaderDecision(base, verdict.header, verdict.reason);
}

/** The dialect with its first record taken as the header (or as data), for the given reason. */
export function withHeaderDecision(dialect: Dialect, hasHeader: boolean, reason: string): Dialect {
  const first = dialect.firstRecord;
  if (!hasHeader || first === null) {
    return {
      ...dialect,
      hasHeader: false,
      header: null,
      dataStart: dialect.bomLength,
      linesBeforeData: 0,
      headerReason: reason,
    };
  }
  return {
    ...dialect,
    hasHeader: true,
    header: first.fields,
    dataStart: first.nextOffset,
    linesBeforeData: first.linesThrough,
    headerReason: reason,
  };
}
