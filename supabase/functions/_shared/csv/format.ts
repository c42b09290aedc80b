/**
 * The byte-level shape of a CSV file, shared by every pass (dialect sniffing, scan, boundary finding, parsing).
 *
 * Invariants:
 * - `delimiter` and `quote` are single, distinct ASCII characters, neither of them CR or LF. Because they are
 *   ASCII, scanning for them byte by byte is safe in UTF-8: ASCII bytes never occur inside a multibyte sequence,
 *   and in the single-byte encodings of encoding.ts they are the ASCII characters themselves.
 * - The quote character is its own escape (RFC 4180 `""`; PostgreSQL `COPY … CSV` with ESCAPE = QUOTE).
 * - The record terminator byte is `\n` for LF and CRLF files and `\r` for lone-CR files. In CRLF files the `\r`
 *   just before the terminating `\n` belongs to the terminator, not to the last field.
 */
import type { FileEncoding } from "./encoding.ts";

/** Line-ending style of a file. */
export type Newline = "\n" | "\r\n" | "\r";

/** What every pass needs to know about a file's syntax. */
export interface CsvFormat {
  readonly delimiter: string;
  readonly quote: string;
  readonly newline: Newline;
  /** The file's text encoding (encoding.ts; absent: UTF-8). Structural bytes are the same in every one. */
  readonly encoding?: FileEncoding;
}

/** A validated {@link CsvFormat} as byte values. */
export interface FormatBytes {
  readonly delimiter: number;
  readonly quote: number;
  /** The byte that terminates a record (and counts a physical line): LF, or CR for lone-CR files. */
  readonly terminator: number;
  /** The line-break byte that must not appear unquoted in this file (CR in LF/CRLF files, LF in CR files). */
  readonly foreign: number;
  readonly crlf: boolean;
}

export const LF = 0x0a;
export const CR = 0x0d;

function asciiByte(name: string, value: string): number {
  if (value.length !== 1 || value.charCodeAt(0) > 0x7f) {
    throw new RangeError(`${name} must be a single ASCII character, got ${JSON.stringify(value)}`);
  }
  const b = value.charCodeAt(0);
  if (b === LF || b === CR) throw new RangeError(`${name} must not be a line break`);
  return b;
}

/** Validates a format and returns its bytes. Throws RangeError on an unusable format. */
export function formatBytes(format: CsvFormat): FormatBytes {
  const delimiter = asciiByte("delimiter", format.delimiter);
  const quote = asciiByte("quote", format.quote);
  if (delimiter === quote) throw new RangeError("delimiter and quote must differ");
  if (format.newline !== "\n" && format.newline !== "\r\n" && format.newline !== "\r") {
    throw new RangeError(`newline must be "\\n", "\\r\\n" or "\\r"`);
  }
  const cr = format.newline === "\r";
  return {
    delimiter,
    quote,
    terminator: cr ? CR : LF,
    foreign: cr ? LF : CR,
    crlf: format.newline === "\r\n",
  };
}
