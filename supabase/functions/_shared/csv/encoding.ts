/**
 * The text encodings a file may be in, and how its bytes become text.
 *
 * Supported: UTF-8 (the default), the single-byte encodings of most non-UTF-8 CSV exports — Windows-1252
 * (Excel's "CSV" on Western Windows), ISO-8859-1 (Latin-1) and ISO-8859-15 (Latin-9) — and UTF-16 LE/BE (Excel's
 * "Unicode text"; a file with a UTF-16 byte-order mark is read as such whatever the profile says). A profile
 * names the file's encoding (`csv_import.profiles.encoding`); the job keeps it in its dialect (`CsvFormat.encoding`).
 *
 * Invariants:
 * - Every single-byte encoding here is ASCII-compatible and maps each byte below 0x80 to that ASCII character:
 *   the delimiter, quote and line breaks are the same bytes as in UTF-8, so boundary finding, scanning and
 *   record splitting run on the file's own bytes, and every offset stays a file offset, exact at chunk edges.
 *   UTF-16 is read through narrowed code units (utf16.ts): every offset is still a file offset, always even.
 * - A single-byte encoding maps one byte to one UTF-16 code unit: a decoded string's indexes are the bytes'
 *   indexes (the parser relies on it to cut fields from a decoded batch).
 * - Decoding is PostgreSQL's (`COPY … ENCODING`, `convert_from`), checked byte by byte against the server by
 *   encoding_test.ts: LATIN1 maps byte b to U+00b (TextDecoder's "iso-8859-1" is Windows-1252 by the WHATWG
 *   standard, which PostgreSQL's LATIN1 is not); WIN1252 has no character for 0x81, 0x8D, 0x8F, 0x90 and 0x9D,
 *   which PostgreSQL refuses with "character with byte sequence 0x81 in encoding "WIN1252" has no equivalent in
 *   encoding "UTF8"" (TextDecoder maps them to C1 controls): the strict decoder refuses them the same way.
 */
import { NATIVE_LE } from "./utf16.ts";
import { hexByte, scanUtf8 } from "./utf8.ts";

/** The encodings a profile may name, as it spells them (WHATWG labels). */
export const FILE_ENCODINGS = [
  "utf-8",
  "windows-1252",
  "iso-8859-1",
  "iso-8859-15",
  "utf-16le",
  "utf-16be",
] as const;
export type FileEncoding = typeof FILE_ENCODINGS[number];

/** PostgreSQL's name of each encoding (COPY's ENCODING option, convert_from); PostgreSQL has no UTF-16. */
export const PG_ENCODING: Record<FileEncoding, string | null> = {
  "utf-8": "UTF8",
  "windows-1252": "WIN1252",
  "iso-8859-1": "LATIN1",
  "iso-8859-15": "LATIN9",
  "utf-16le": null,
  "utf-16be": null,
};

/** Human names, for messages. */
const DISPLAY: Record<FileEncoding, string> = {
  "utf-8": "UTF-8",
  "windows-1252": "Windows-1252",
  "iso-8859-1": "ISO-8859-1 (Latin-1)",
  "iso-8859-15": "ISO-8859-15 (Latin-9)",
  "utf-16le": "UTF-16 LE",
  "utf-16be": "UTF-16 BE",
};

export function isFileEncoding(value: unknown): value is FileEncoding {
  return typeof value === "string" && (FILE_ENCODINGS as readonly string[]).includes(value);
}

/** Raised by {@link TextCodec.strict} for bytes that are not text in the encoding. */
export class UndecodableError extends Error {}

/** How one encoding's bytes become text. */
export interface TextCodec {
  readonly encoding: FileEncoding;
  /** One byte per code unit (the single-byte encodings). */
  readonly singleByte: boolean;
  /** Bytes per code unit: 2 for UTF-16 (read through utf16.ts's narrowed units), else 1. */
  readonly unitBytes: 1 | 2;
  /** UTF-16 only: decodes code units (in the platform's byte order); throws {@link UndecodableError}. */
  strictUnits?(units: Uint16Array): string;
  /** UTF-16 only: why units[from, to) are not text, or null. */
  problemUnits?(units: Uint16Array, from: number, to: number, base: number): string | null;
  /** Decodes bytes[from, to); throws {@link UndecodableError} when they are not text in this encoding. */
  strict(bytes: Uint8Array): string;
  /** Decodes, with U+FFFD for what is not text (a reject's raw text). */
  lossy(bytes: Uint8Array): string;
  /** Why bytes[from, to) are not text, in PostgreSQL's words where it has them, or null when they are. */
  problem(bytes: Uint8Array, from: number, to: number, base: number): string | null;
}

const FATAL_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const LOSSY_UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });

const UTF8: TextCodec = {
  encoding: "utf-8",
  singleByte: false,
  unitBytes: 1,
  strict(bytes) {
    try {
      return FATAL_UTF8.decode(bytes);
    } catch {
      throw new UndecodableError("invalid UTF-8");
    }
  },
  lossy: (bytes) => LOSSY_UTF8.decode(bytes),
  problem(bytes, from, to, base) {
    const u = scanUtf8(bytes, from, to);
    const at = u.invalidAt !== -1 ? u.invalidAt : u.incompleteAt;
    return at === -1 ? null : `invalid UTF-8: byte ${hexByte(bytes[at])} at offset ${base + at}`;
  },
};

/** Marks a byte without a character in a strict table (no single-byte encoding here maps a byte to U+FFFF). */
const NO_CHARACTER = 0xffff;
const UTF16LE = new TextDecoder("utf-16le");

/** A single-byte encoding from its 256 code points (NO_CHARACTER where it has none). */
function singleByteCodec(encoding: FileEncoding, table: Uint16Array): TextCodec {
  const lossyTable = table.map((c) => (c === NO_CHARACTER ? 0xfffd : c));
  const hasGaps = table.includes(NO_CHARACTER);
  let units = new Uint16Array(1 << 16);
  const decode = (bytes: Uint8Array, t: Uint16Array): string => {
    if (units.length < bytes.length) units = new Uint16Array(Math.max(bytes.length, units.length * 2));
    for (let i = 0; i < bytes.length; i++) units[i] = t[bytes[i]];
    return UTF16LE.decode(units.subarray(0, bytes.length));
  };
  return {
    encoding,
    singleByte: true,
    unitBytes: 1,
    strict(bytes) {
      const s = decode(bytes, table);
      if (hasGaps && s.indexOf("\uffff") !== -1) throw new UndecodableError(`invalid ${encoding}`);
      return s;
    },
    lossy: (bytes) => decode(bytes, lossyTable),
    problem(bytes, from, to) {
      for (let i = from; i < to; i++) {
        if (table[bytes[i]] === NO_CHARACTER) {
          // PostgreSQL's message (report_untranslatable_char), so that a reject reads as \copy's error.
          const hex = bytes[i].toString(16).padStart(2, "0");
          return `character with byte sequence 0x${hex} in ` +
            `encoding "${PG_ENCODING[encoding]}" has no equivalent in encoding "UTF8"`;
        }
      }
      return null;
    },
  };
}

/** The WHATWG table of a single-byte encoding, from the runtime's TextDecoder. */
function whatwgTable(label: string): Uint16Array {
  const bytes = new Uint8Array(256).map((_, i) => i);
  const text = new TextDecoder(label).decode(bytes);
  if (text.length !== 256) throw new Error(`${label} is not a single-byte encoding here`);
  return Uint16Array.from(text, (ch) => ch.charCodeAt(0));
}

/** UTF-16 in the given byte order: raw bytes (a reject's raw text) or narrowed units (the parser's fields). */
function utf16Codec(encoding: "utf-16le" | "utf-16be"): TextCodec {
  const fatalBytes = new TextDecoder(encoding, { fatal: true, ignoreBOM: true });
  const lossyBytes = new TextDecoder(encoding, { ignoreBOM: true });
  // Units are held in the platform's byte order (utf16.ts NATIVE_LE).
  const fatalUnits = new TextDecoder(NATIVE_LE ? "utf-16le" : "utf-16be", { fatal: true, ignoreBOM: true });
  const unpaired = (units: ArrayLike<number>, from: number, to: number): number => {
    for (let i = from; i < to; i++) {
      const u = units[i];
      if (u >= 0xd800 && u <= 0xdbff) {
        if (i + 1 < to && units[i + 1] >= 0xdc00 && units[i + 1] <= 0xdfff) i++;
        else return i;
      } else if (u >= 0xdc00 && u <= 0xdfff) return i;
    }
    return -1;
  };
  const strict = (decoder: TextDecoder, view: Uint8Array | Uint16Array): string => {
    try {
      return decoder.decode(view);
    } catch {
      throw new UndecodableError(`invalid ${encoding}`);
    }
  };
  return {
    encoding,
    singleByte: false,
    unitBytes: 2,
    strict: (bytes) => strict(fatalBytes, bytes),
    lossy: (bytes) => lossyBytes.decode(bytes),
    problem(bytes, from, to, base) {
      const be = encoding === "utf-16be";
      const units: number[] = [];
      for (let i = from; i + 1 < to; i += 2) {
        units.push(be ? (bytes[i] << 8) | bytes[i + 1] : (bytes[i + 1] << 8) | bytes[i]);
      }
      const at = unpaired(units, 0, units.length);
      return at === -1 ? null : `invalid UTF-16: unpaired surrogate at offset ${base + from + 2 * at}`;
    },
    strictUnits: (units) => strict(fatalUnits, units),
    problemUnits(units, from, to, base) {
      const at = unpaired(units, from, to);
      return at === -1 ? null : `invalid UTF-16: unpaired surrogate at offset ${base + 2 * (at - from)}`;
    },
  };
}

let codecs: Map<FileEncoding, TextCodec> | null = null;

/** The codec of an encoding (absent: UTF-8). */
export function textCodec(encoding: FileEncoding | undefined | null): TextCodec {
  if (encoding === undefined || encoding === null || encoding === "utf-8") return UTF8;
  if (codecs === null) {
    const win1252 = whatwgTable("windows-1252");
    // The five bytes Windows-1252 leaves undefined, which PostgreSQL's WIN1252 refuses (WHATWG maps them to C1).
    for (const b of [0x81, 0x8d, 0x8f, 0x90, 0x9d]) win1252[b] = NO_CHARACTER;
    codecs = new Map([
      ["windows-1252", singleByteCodec("windows-1252", win1252)],
      ["iso-8859-1", singleByteCodec("iso-8859-1", new Uint16Array(256).map((_, i) => i))],
      ["iso-8859-15", singleByteCodec("iso-8859-15", whatwgTable("iso-8859-15"))],
      ["utf-16le", utf16Codec("utf-16le")],
      ["utf-16be", utf16Codec("utf-16be")],
    ]);
  }
  const codec = codecs.get(encoding);
  if (codec === undefined) throw new RangeError(`Unsupported encoding ${JSON.stringify(encoding)}`);
  return codec;
}

export function encodingName(encoding: FileEncoding): string {
  return DISPLAY[encoding];
}

/**
 * The likely encoding of bytes that are not UTF-8, for the message that says which setting fixes it: a byte in
 * 0x80–0x9F that Windows-1252 defines (curly quotes, €, dashes) says Windows-1252; one it does not define says
 * ISO-8859-1 (C1 controls); otherwise Windows-1252, which reads every ISO-8859-1 letter the same and is what
 * Windows and Excel write. (ISO-8859-15 differs from both in eight letters; no statistic tells them apart.)
 */
export function guessSingleByteEncoding(bytes: Uint8Array): FileEncoding {
  let undefinedC1 = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b < 0x80 || b > 0x9f) continue;
    if (b === 0x81 || b === 0x8d || b === 0x8f || b === 0x90 || b === 0x9d) undefinedC1 = true;
    else return "windows-1252";
  }
  return undefinedC1 ? "iso-8859-1" : "windows-1252";
}
