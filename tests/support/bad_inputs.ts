/**
 * The bad-input corpus (issue #5): every file, built deterministically in memory at test time, next to the
 * exact outcome the pipeline must reach for it. tests/bad_input_test.ts uploads each one to the local stack
 * and checks that outcome; README.md "Bad input" lists the same cases.
 *
 * Invariants:
 * - Same code → byte-identical files (no clock, a seeded PRNG for the binary file). Nothing is committed as
 *   data: the test writes the files to a temporary directory and deletes them.
 * - Every case states one exact outcome: the job fails with this error (and whether it got as far as planning
 *   chunks), or it succeeds (with rejects) with exactly these rejects (line, column, reason) and exactly the
 *   rows of `clean` loaded — `clean` is a UTF-8, LF, headed CSV of the good rows that `psql \copy` loads into
 *   a twin table, so "nothing accepted lost" is checked against PostgreSQL's own reading of the same values.
 * - Line numbers are physical lines (1-based, the header is line 1), as an editor shows them.
 * - The 256 MB file without a line break is not here: it is streamed to disk by the test (`writeNoNewline`),
 *   never held in memory.
 */
import { HEADER, prng } from "./generate_csv.ts";
import { zipArchive } from "./zip_writer.ts";

export type DateStyle = "iso" | "mdy" | "dmy";

/** The target table a case loads into: the generator's demo shape, or {@link TYPED_TABLE_SQL}'s. */
export type TableShape = "orders" | "typed";

export interface ExpectedReject {
  line: number;
  column: string | null;
  reason: string;
}

export type Expected =
  | {
    status: "failed";
    /** The job's error (exact), or a pattern when it legitimately varies (which chunk fails first). */
    error: string | RegExp;
    /** "register": refused before any chunk was planned; "load": a chunk found it (rows before may load). */
    stage: "register" | "load";
  }
  | {
    status: "succeeded" | "succeeded_with_rejects";
    rejects: ExpectedReject[];
    /** The rows that must be in the table, as a headed LF CSV for `psql \copy`; "same" = the file itself. */
    clean: string | "same";
    /** DateStyle for the `\copy` of `clean` (PostgreSQL decides what an ambiguous date means). */
    cleanDateStyle?: string;
    /** Header names the job ignores (they match no column). */
    ignored?: string[];
    /** The downloadable rejects CSV, exactly. */
    rejectsCsv?: string;
    /** Values PostgreSQL itself must refuse for `column`, with an error the reject's reason starts with. */
    pgRefuses?: { column: string; value: string; reason: string }[];
  };

export interface BadInput {
  /** Unique; also the object folder. */
  name: string;
  file: string;
  /** The input class, for failure messages and the README. */
  what: string;
  table: TableShape;
  profile?: { hasHeader?: boolean; dateStyle?: DateStyle; chunkSizeBytes?: number };
  /** No profile matches the object (it is uploaded outside the profiles' patterns). */
  unmatched?: boolean;
  bytes: Uint8Array;
  /** `table` is the case's target table (schema-qualified). */
  expect: (ctx: { table: string }) => Expected;
}

/** Columns of every type class the out-of-range and date cases need (the enum comes from the demo table). */
export const TYPED_TABLE_SQL = (name: string) => `
create table ${name} (
  id int primary key,
  small smallint,
  big bigint,
  amount numeric(6, 2),
  code varchar(5),
  cc char(2),
  flag boolean,
  uid uuid,
  status public.demo_order_status,
  day date,
  at timestamptz,
  note text not null default ''
)`;

const TYPED_HEADER = [
  "id",
  "small",
  "big",
  "amount",
  "code",
  "cc",
  "flag",
  "uid",
  "status",
  "day",
  "at",
  "note",
];

const enc = new TextEncoder();
const MiB = 1024 * 1024;
/** MAX_RECORD_BYTES and MAX_COLUMNS of the stack (config.ts defaults). */
export const MAX_RECORD_BYTES = MiB;
export const MAX_COLUMNS = 1600;
/** The table the injection case's header names in a `drop table`: the test creates it and checks it survives. */
export const CANARY = "public.e2e_bad_input_canary";

/** A one-line demo-table record (no terminator); `set` replaces values, `drop` leaves columns out. */
export function orderRow(id: number, set: Record<string, string> = {}, drop: string[] = []): string {
  const values: Record<string, string> = {
    id: String(id),
    customer_id: "00000000-0000-4000-8000-" + String(Math.abs(id)).padStart(12, "0"),
    email: `u${id}@example.com`,
    country: "US",
    amount: "1.00",
    quantity: "1",
    paid: "true",
    ordered_at: "2024-01-01T00:00:00Z",
    status: "new",
    note: "ok",
    ...set,
  };
  return HEADER.filter((h) => !drop.includes(h)).map((h) => values[h]).join(",");
}

function typedRow(id: number, set: Record<string, string> = {}): string {
  const values: Record<string, string> = {
    id: String(id),
    small: "1",
    big: "1",
    amount: "1.00",
    code: "abc",
    cc: "US",
    flag: "true",
    uid: "00000000-0000-4000-8000-" + String(id).padStart(12, "0"),
    status: "new",
    day: "2025-01-02",
    at: "2025-01-02T03:04:05Z",
    note: "ok",
    ...set,
  };
  return TYPED_HEADER.map((h) => values[h]).join(",");
}

const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const headed = (rows: string[], header = HEADER) => [header.join(","), ...rows].join("\n") + "\n";
const text = (s: string) => enc.encode(s);
const concat = (...parts: (Uint8Array | string)[]) => {
  const bytes = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
  }
  return out;
};

function utf16(s: string, bigEndian: boolean, bom: boolean): Uint8Array {
  const out: number[] = bom ? (bigEndian ? [0xfe, 0xff] : [0xff, 0xfe]) : [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (bigEndian) out.push(c >> 8, c & 0xff);
    else out.push(c & 0xff, c >> 8);
  }
  return new Uint8Array(out);
}

/** `bytes` as one gzip member (CompressionStream: deterministic, no name or time in the header). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The two parts of an .xlsx workbook that zip.ts recognises it by (the rest of a real workbook is not needed). */
const XLSX_CONTENT_TYPES = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Override PartName="/xl/workbook.xml" ' +
  'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>';
const XLSX_WORKBOOK = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
  '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>';

/** Rows 1..n, enough to push what follows past the 64 KiB head the sniffer reads (~130 bytes a row). */
const PAST_HEAD_ROWS = 700;

/** Builds the corpus. */
export async function buildCorpus(): Promise<BadInput[]> {
  const goodText = headed(ids(1, 20).map((id) => orderRow(id)));
  const good = (from: number, to: number) => headed(ids(from, to).map((id) => orderRow(id)));
  const cases: BadInput[] = [];
  const add = (c: BadInput) => cases.push(c);

  // ---- not CSV text at all: refused at registration, nothing planned --------------------------------------
  add({
    name: "empty",
    file: "empty.csv",
    what: "empty file (0 bytes)",
    table: "orders",
    bytes: new Uint8Array(0),
    expect: () => ({ status: "failed", stage: "register", error: "File is empty" }),
  });
  add({
    name: "blank-lines-only",
    file: "blank.csv",
    what: "only line breaks",
    table: "orders",
    bytes: text("\n\r\n\n"),
    expect: () => ({ status: "failed", stage: "register", error: "File has no rows: it is blank" }),
  });
  // A compressed upload is recognised by its bytes whatever its name (issue 16): a gzip file named .csv loads.
  add({
    name: "gzip",
    file: "orders.csv",
    what: "gzip file named .csv",
    table: "orders",
    bytes: await gzip(text(goodText)),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });
  // A real (stored) ZIP archive shaped like an Excel workbook: zip.ts names the workbook part it found.
  add({
    name: "xlsx",
    file: "orders.csv",
    what: "Excel workbook (ZIP with [Content_Types].xml and xl/workbook.xml) named .csv",
    table: "orders",
    bytes: await zipArchive([
      { name: "[Content_Types].xml", bytes: text(XLSX_CONTENT_TYPES) },
      { name: "xl/workbook.xml", bytes: text(XLSX_WORKBOOK) },
    ]),
    expect: () => ({
      status: "failed",
      stage: "register",
      error:
        "The upload is an Excel workbook (xl/workbook.xml), not a ZIP of a CSV file; export the sheet as CSV",
    }),
  });
  // The first bytes of a ZIP archive and nothing after them: no end-of-central-directory record to read.
  add({
    name: "zip-truncated",
    file: "orders.csv",
    what: "truncated ZIP archive (a local header's first bytes only) named .csv",
    table: "orders",
    bytes: concat(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]), "[Content_Types].xml"),
    expect: () => ({
      status: "failed",
      stage: "register",
      error: "The ZIP archive is truncated or not a ZIP file: its end-of-central-directory record is missing",
    }),
  });
  {
    const random = prng(7);
    const bytes = new Uint8Array(4096);
    bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    for (let i = 8; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    let controls = 0;
    for (const c of bytes) if (c < 0x20 && ![0x09, 0x0a, 0x0d, 0x0c, 0x1b].includes(c)) controls++;
    add({
      name: "binary",
      file: "image.csv",
      what: "binary file (PNG bytes) named .csv",
      table: "orders",
      bytes,
      expect: () => ({
        status: "failed",
        stage: "register",
        error: `File looks like binary data (${controls} control bytes in its first 4096 bytes), not CSV`,
      }),
    });
  }
  // A UTF-16 byte-order mark says what the file is: it loads as its UTF-8 text would (csv/encoding.ts).
  add({
    name: "utf16le-bom",
    file: "orders.csv",
    what: "UTF-16 LE with BOM (FF FE)",
    table: "orders",
    bytes: utf16(goodText, false, true),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });
  add({
    name: "utf16be-bom",
    file: "orders.csv",
    what: "UTF-16 BE with BOM (FE FF)",
    table: "orders",
    bytes: utf16(goodText, true, true),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });
  add({
    name: "utf16le-no-bom",
    file: "orders.csv",
    what: "UTF-16 LE without BOM (every other byte NUL)",
    table: "orders",
    bytes: utf16(goodText, false, false),
    expect: () => ({
      status: "failed",
      stage: "register",
      error:
        "File looks like UTF-16 LE without a byte-order mark (every other byte is NUL): set the profile's " +
        "encoding to utf-16le, or save it as UTF-8 and upload again",
    }),
  });

  // ---- encoding problems inside otherwise good CSV ---------------------------------------------------------
  {
    const before = headed([orderRow(1)]);
    add({
      name: "nul-in-head",
      file: "orders.csv",
      what: "NUL byte in the first 64 KiB (line 3)",
      table: "orders",
      bytes: concat(before, "2\0", orderRow(2).slice(1), "\n", orderRow(3), "\n"),
      expect: () => ({
        status: "failed",
        stage: "register",
        error: `File contains a NUL byte at line 3 (offset ${enc.encode(before).length + 1}); ` +
          "remove it and upload again",
      }),
    });
  }
  {
    const head = good(1, 30) + orderRow(31, { note: "Caf" });
    add({
      name: "invalid-utf8-head",
      file: "latin1.csv",
      what: "invalid UTF-8 (Latin-1 é) in the first 64 KiB",
      table: "orders",
      bytes: concat(head, new Uint8Array([0xe9]), "\n"),
      expect: () => ({
        status: "failed",
        stage: "register",
        error: `File is not UTF-8 text: invalid byte 0xE9 at line 32 (offset ${enc.encode(head).length}). ` +
          `It looks like Windows-1252, where that byte is "é": set the profile's encoding to windows-1252 ` +
          "(csv-import profiles add … --encoding windows-1252), or save the file as UTF-8 and upload again",
      }),
    });
  }
  {
    const head = good(1, PAST_HEAD_ROWS);
    const badLine = PAST_HEAD_ROWS + 2;
    const prefix = orderRow(PAST_HEAD_ROWS + 1, { note: "Caf" });
    const offset = enc.encode(head + prefix).length;
    add({
      name: "invalid-utf8-row",
      file: "latin1_late.csv",
      what: "invalid UTF-8 in one row past the head",
      table: "orders",
      bytes: concat(head, prefix, new Uint8Array([0xe9]), "\n", orderRow(PAST_HEAD_ROWS + 2), "\n"),
      expect: () => ({
        status: "succeeded_with_rejects",
        rejects: [{ line: badLine, column: null, reason: `invalid UTF-8: byte 0xE9 at offset ${offset}` }],
        clean: good(1, PAST_HEAD_ROWS) + orderRow(PAST_HEAD_ROWS + 2) + "\n",
      }),
    });
  }
  {
    const head = good(1, PAST_HEAD_ROWS);
    add({
      name: "nul-in-row",
      file: "nul_late.csv",
      what: "NUL byte in one row past the head",
      table: "orders",
      bytes: text(
        head + orderRow(PAST_HEAD_ROWS + 1, { note: "a\0b" }) + "\n" + orderRow(PAST_HEAD_ROWS + 2) +
          "\n",
      ),
      expect: () => ({
        status: "succeeded_with_rejects",
        rejects: [{ line: PAST_HEAD_ROWS + 2, column: "note", reason: "NUL character not allowed" }],
        clean: head + orderRow(PAST_HEAD_ROWS + 2) + "\n",
        // The stored raw text shows the NUL as U+FFFD (PostgreSQL text cannot hold U+0000).
        rejectsCsv: "line_number,column,reason,raw_record\r\n" +
          `"${PAST_HEAD_ROWS + 2}","note","NUL character not allowed",` +
          `"${orderRow(PAST_HEAD_ROWS + 1, { note: "a\uFFFDb" })}"\r\n`,
      }),
    });
  }
  add({
    name: "bom",
    file: "bom.csv",
    what: "UTF-8 BOM (EF BB BF) before the header",
    table: "orders",
    bytes: concat(new Uint8Array([0xef, 0xbb, 0xbf]), goodText),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });

  // ---- line endings -------------------------------------------------------------------------------------
  const lines = [HEADER.join(","), ...ids(1, 20).map((id) => orderRow(id))];
  add({
    name: "crlf",
    file: "crlf.csv",
    what: "CRLF line endings",
    table: "orders",
    bytes: text(lines.join("\r\n") + "\r\n"),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });
  add({
    name: "lone-cr",
    file: "cr.csv",
    what: "lone CR line endings (classic Mac)",
    table: "orders",
    bytes: text(lines.join("\r") + "\r"),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });
  add({
    name: "bare-lf-in-crlf",
    file: "mixed.csv",
    what: "CRLF file with one LF-only line end (line 6)",
    table: "orders",
    bytes: text(lines.slice(0, 6).join("\r\n") + "\n" + lines.slice(6).join("\r\n") + "\r\n"),
    expect: () => ({
      status: "succeeded_with_rejects",
      rejects: [{
        line: 6,
        column: null,
        reason: "line ends with LF only, but the file uses CRLF line endings",
      }],
      clean: headed(ids(1, 20).filter((id) => id !== 5).map((id) => orderRow(id))),
    }),
  });
  add({
    name: "stray-cr-in-lf",
    file: "stray_cr.csv",
    what: "LF file with an unquoted CR inside a value (line 4)",
    table: "orders",
    bytes: text(
      headed(ids(1, 10).map((id) => (id === 3 ? orderRow(id, { note: "a\rb" }) : orderRow(id)))),
    ),
    expect: () => ({
      status: "succeeded_with_rejects",
      rejects: [{
        line: 4,
        column: null,
        reason: "unquoted carriage return in data (the file uses LF line endings); quote the field",
      }],
      clean: headed(ids(1, 10).filter((id) => id !== 3).map((id) => orderRow(id))),
    }),
  });
  add({
    name: "blank-lines-inside",
    file: "blank_inside.csv",
    what: "blank lines between rows",
    table: "orders",
    bytes: text(HEADER.join(",") + "\n" + orderRow(1) + "\n\n\n" + orderRow(2) + "\n\n" + orderRow(3) + "\n"),
    expect: () => ({ status: "succeeded", rejects: [], clean: good(1, 3) }),
  });

  // ---- quoting --------------------------------------------------------------------------------------------
  add({
    name: "unterminated-quote-head",
    file: "open_quote.csv",
    what: "quoted field opened on line 4 and never closed (small file)",
    table: "orders",
    bytes: text(
      headed(ids(1, 8).map((id) => (id === 3 ? orderRow(id, { note: '"never closed' }) : orderRow(id)))),
    ),
    expect: () => ({
      status: "failed",
      stage: "register",
      error: "Unterminated quoted field starting at line 4",
    }),
  });
  {
    const line = PAST_HEAD_ROWS * 2 + 2;
    add({
      name: "unterminated-quote-eof",
      file: "open_quote_late.csv",
      what: "quoted field opened past the head, running to the end of the file",
      table: "orders",
      bytes: text(
        good(1, PAST_HEAD_ROWS * 2) + orderRow(PAST_HEAD_ROWS * 2 + 1, { note: '"open' }) + "\nnote\n" +
          orderRow(PAST_HEAD_ROWS * 2 + 2) + "\n",
      ),
      expect: () => ({
        status: "failed",
        stage: "load",
        error: `Unterminated quoted field starting at line ${line}`,
      }),
    });
  }
  add({
    name: "stray-quote-unbalanced",
    file: "inches.csv",
    what: 'one stray quote inside an unquoted value (12" pizza, line 5)',
    table: "orders",
    bytes: text(
      headed(ids(1, 8).map((id) => (id === 4 ? orderRow(id, { note: '12" pizza' }) : orderRow(id)))),
    ),
    expect: () => ({
      status: "failed",
      stage: "register",
      error: "Unterminated quoted field starting at line 5",
    }),
  });
  {
    const bytes = text(
      headed(
        ids(1, 6).map((id) =>
          id === 2
            ? orderRow(id, { note: '5 "inch" pipe' })
            : id === 4
            ? orderRow(id, { note: 'a""b' })
            : orderRow(id)
        ),
      ),
    );
    add({
      name: "stray-quotes-paired",
      file: "paired.csv",
      what: 'paired stray quotes inside unquoted values (5 "inch" pipe)',
      table: "orders",
      bytes,
      // PostgreSQL's COPY CSV reads a quote inside an unquoted field as opening a quoted section: 5 inch pipe.
      expect: () => ({ status: "succeeded", rejects: [], clean: "same" }),
    });
  }

  {
    // Quoted line breaks (LF and CRLF) and multibyte characters inside values: physical line numbers count the
    // breaks inside quotes, so the short row after them is reported at the line an editor shows.
    const notes = ['"two\nlines"', '"Zoë, 漢字テスト\r\n😀 ñandú"', '"""quoted""\n\nafter a blank line"'];
    const rows = ids(1, 6).map((id) => orderRow(id, id <= 3 ? { note: notes[id - 1] } : {}));
    const short = orderRow(7, { email: "Ærøskøbing@example.com" }, ["note"]);
    // Header (1), rows 1–3 (lines 2–3, 4–5, 6–8: CRLF inside quotes is one line break), rows 4–6 (9–11): the short
    // row is line 12.
    add({
      name: "quoted-newlines-multibyte",
      file: "quoted_lines.csv",
      what: "quoted line breaks and multibyte characters in values, then a short row (line 12)",
      table: "orders",
      bytes: text(headed([...rows, short, orderRow(8, { note: "Ærø" })])),
      expect: () => ({
        status: "succeeded_with_rejects",
        rejects: [{ line: 12, column: null, reason: "Expected 10 fields, found 9" }],
        clean: headed([...rows, orderRow(8, { note: "Ærø" })]),
      }),
    });
  }

  // ---- record shape -----------------------------------------------------------------------------------------
  add({
    name: "too-few-fields",
    file: "short.csv",
    what: "rows with too few fields (lines 3 and 7)",
    table: "orders",
    bytes: text(
      headed(ids(1, 8).map((id) => (id === 2 || id === 6 ? orderRow(id, {}, ["note"]) : orderRow(id)))),
    ),
    expect: () => ({
      status: "succeeded_with_rejects",
      rejects: [3, 7].map((line) => ({ line, column: null, reason: "Expected 10 fields, found 9" })),
      clean: headed(ids(1, 8).filter((id) => id !== 2 && id !== 6).map((id) => orderRow(id))),
    }),
  });
  add({
    name: "too-many-fields",
    file: "long.csv",
    what: "rows with too many fields (line 4)",
    table: "orders",
    bytes: text(headed(ids(1, 8).map((id) => (id === 3 ? orderRow(id) + ",extra,more" : orderRow(id))))),
    expect: () => ({
      status: "succeeded_with_rejects",
      rejects: [{ line: 4, column: null, reason: "Expected 10 fields, found 12" }],
      clean: headed(ids(1, 8).filter((id) => id !== 3).map((id) => orderRow(id))),
    }),
  });
  {
    const head = good(1, 600);
    add({
      name: "record-too-large",
      file: "huge_record.csv",
      what: "one record larger than MAX_RECORD_BYTES (1 MiB), line 602",
      table: "orders",
      bytes: text(
        head + orderRow(601, { note: "y".repeat(MAX_RECORD_BYTES + 10) }) + "\n" + orderRow(602) + "\n",
      ),
      expect: () => ({
        status: "failed",
        stage: "load",
        error: "Record at line 602 is larger than the limit of 1048576 bytes (MAX_RECORD_BYTES)",
      }),
    });
  }
  add({
    name: "record-across-chunks",
    file: "huge_record_chunks.csv",
    what: "a 3 MiB record spanning several 1 MiB chunks, line 7",
    table: "orders",
    profile: { chunkSizeBytes: MiB },
    bytes: text(good(1, 5) + orderRow(6, { note: "z".repeat(3 * MiB) }) + "\n" + orderRow(7) + "\n"),
    expect: () => ({
      status: "failed",
      stage: "load",
      // Whichever chunk meets it first: the one where it starts, or one that starts inside it.
      error: /^Record (at|spanning) line 7 is larger than the limit of 1048576 bytes \(MAX_RECORD_BYTES\)$/,
    }),
  });
  {
    const names = ids(1, 10_000).map((i) => `column_${String(i).padStart(5, "0")}`);
    add({
      name: "ten-thousand-columns",
      file: "wide.csv",
      what: "10,000 columns (header of 130 KB)",
      table: "orders",
      bytes: text(names.join(",") + "\n" + names.map(() => "1").join(",") + "\n"),
      expect: () => ({
        status: "failed",
        stage: "register",
        error: "File has 10000 columns; the limit is 1600 (MAX_COLUMNS)",
      }),
    });
  }

  // ---- header -----------------------------------------------------------------------------------------------
  add({
    name: "header-only",
    file: "header_only.csv",
    what: "header row, no data rows",
    table: "orders",
    bytes: text(HEADER.join(",") + "\n"),
    expect: () => ({ status: "succeeded", rejects: [], clean: HEADER.join(",") + "\n" }),
  });
  add({
    name: "no-header-sniffed",
    file: "headerless.csv",
    what: "no header row (profile leaves has_header to the sniffer): columns by position",
    table: "orders",
    bytes: text(ids(1, 20).map((id) => orderRow(id)).join("\n") + "\n"),
    expect: () => ({ status: "succeeded", rejects: [], clean: goodText }),
  });
  add({
    name: "no-header-expected",
    file: "headerless.csv",
    what: "no header row where the profile says has_header = true",
    table: "orders",
    profile: { hasHeader: true },
    bytes: text(ids(1, 20).map((id) => orderRow(id)).join("\n") + "\n"),
    expect: ({ table }) => ({
      status: "failed",
      stage: "register",
      error: `The file lacks required columns of ${table}: "id", "customer_id", "email" (the header has: ` +
        orderRow(1).split(",").map((v) => `"${v}"`).join(", ") +
        "). Line 1 was read as a header because the profile sets has_header to true. The names " +
        orderRow(1).split(",").map((v) => `"${v}"`).join(", ") + ` match no column of ${table}; ` +
        `required columns "id", "customer_id", "email" are missing. ` +
        "If line 1 is data, set the profile's has_header to false.",
    }),
  });
  add({
    name: "duplicate-header",
    file: "dup_header.csv",
    what: "duplicate header names (email, Email)",
    table: "orders",
    bytes: text(headed(ids(1, 5).map((id) => orderRow(id) + ",x"), [...HEADER, "Email"])),
    expect: ({ table }) => ({
      status: "failed",
      stage: "register",
      error: `Header columns 3 ("email") and 11 ("Email") both map to column "email" of ${table}; ` +
        "rename or remove one",
    }),
  });
  add({
    name: "missing-required",
    file: "missing.csv",
    what: "header lacks required (NOT NULL, no default) columns",
    table: "orders",
    bytes: text(
      headed(
        ids(1, 10).map((id) => orderRow(id, {}, ["customer_id", "email"])),
        HEADER.filter((h) => h !== "customer_id" && h !== "email"),
      ),
    ),
    expect: ({ table }) => ({
      status: "failed",
      stage: "register",
      error: `The file lacks required columns of ${table}: "customer_id", "email" (the header has: ` +
        HEADER.filter((h) => h !== "customer_id" && h !== "email").map((h) => `"${h}"`).join(", ") + ")",
    }),
  });
  add({
    name: "no-profile",
    file: "orders.csv",
    what: "object no import profile matches",
    table: "orders",
    unmatched: true,
    bytes: text(goodText),
    expect: () => ({
      status: "failed",
      stage: "register",
      error: /^No import profile matches "[^"]+" in bucket/,
    }),
  });
  {
    const injections = [`id"; drop table ${CANARY}; --`, "$$", "'", "../../etc/passwd"];
    const header = [...HEADER, ...injections].map((
      h,
    ) => (h.includes('"') ? `"${h.replaceAll('"', '""')}"` : h));
    add({
      name: "injection-headers",
      file: "injection.csv",
      what: "header names that are SQL / path injection attempts",
      table: "orders",
      bytes: text(headed(ids(1, 20).map((id) => orderRow(id) + ",1,2,3,4"), header)),
      expect: () => ({ status: "succeeded", rejects: [], clean: goodText, ignored: injections }),
    });
  }

  // ---- values -----------------------------------------------------------------------------------------------
  {
    const bad: [Record<string, string>, string, string][] = [
      [{ id: "2147483648" }, "id", 'value "2147483648" is out of range for type integer'],
      [{ small: "32768" }, "small", 'value "32768" is out of range for type smallint'],
      [{ small: "1.5" }, "small", 'invalid input syntax for type smallint: "1.5"'],
      [{ big: "9223372036854775808" }, "big", 'value "9223372036854775808" is out of range for type bigint'],
      [
        { amount: "10000.00" },
        "amount",
        'numeric field overflow: "10000.00": a field with precision 6, scale 2 must round to an absolute value ' +
        "less than 10^4",
      ],
      [
        { code: "abcdef" },
        "code",
        'value too long for type character varying(5): "abcdef" has 6 characters',
      ],
      [{ cc: "USA" }, "cc", 'value too long for type character(2): "USA" has 3 characters'],
      [{ flag: "maybe" }, "flag", 'invalid input syntax for type boolean: "maybe"'],
      [{ uid: "not-a-uuid" }, "uid", 'invalid input syntax for type uuid: "not-a-uuid"'],
      [{ status: "refunded" }, "status", 'invalid input value for enum demo_order_status: "refunded"'],
      [{ day: "2025-02-30" }, "day", 'date/time field value out of range: "2025-02-30"'],
      [{ at: "2025-01-02T25:00:00Z" }, "at", 'date/time field value out of range: "2025-01-02T25:00:00Z"'],
    ];
    const rows: string[] = [];
    const rejects: ExpectedReject[] = [];
    const goodRows: string[] = [];
    let id = 1;
    for (const [set, column, reason] of bad) {
      goodRows.push(typedRow(id));
      rows.push(typedRow(id++));
      rejects.push({ line: rows.length + 2, column, reason });
      rows.push(typedRow(set.id ? 0 : id++, set));
    }
    add({
      name: "out-of-range",
      file: "typed.csv",
      what: "values out of range / invalid for their column type",
      table: "typed",
      bytes: text(headed(rows, TYPED_HEADER)),
      expect: () => ({
        status: "succeeded_with_rejects",
        rejects,
        clean: headed(goodRows, TYPED_HEADER),
        pgRefuses: bad.map(([set, column, reason]) => ({ column, value: set[column], reason })),
      }),
    });
  }
  {
    // (value, rejected under iso?, rejected under mdy?, rejected under dmy?)
    const dates: [string, boolean, boolean, boolean][] = [
      ["2025-03-04", false, false, false],
      ["4 Mar 2025", false, false, false],
      ["03/04/2025", true, false, false],
      ["13/04/2025", true, true, false],
      ["04/13/2025", true, false, true],
      ["3-4-25", true, false, false],
      ["03.04.2025", true, false, false],
    ];
    const ambiguous = (v: string) => `ambiguous date '${v}': use YYYY-MM-DD or set the profile's date_style`;
    const outOfRange = (v: string) =>
      `date/time field value out of range: "${v}" (check the day/month order)`;
    const file = headed(dates.map(([v], i) => `${i + 1},${v}`), ["id", "day"]);
    for (
      const [style, index, pgStyle] of [["iso", 1, "ISO, MDY"], ["mdy", 2, "ISO, MDY"], [
        "dmy",
        3,
        "ISO, DMY",
      ]] as const
    ) {
      const kept = dates.map((d, i) => [i, d] as const).filter(([, d]) => !d[index]);
      add({
        name: `dates-${style}`,
        file: "dates.csv",
        what: `ambiguous dates (03/04/2025), profile date_style ${style}`,
        table: "typed",
        profile: { dateStyle: style },
        bytes: text(file),
        expect: () => ({
          status: "succeeded_with_rejects",
          rejects: dates.map((d, i) => ({ d, i })).filter(({ d }) => d[index]).map(({ d, i }) => ({
            line: i + 2,
            column: "day",
            reason: style === "iso" ? ambiguous(d[0]) : outOfRange(d[0]),
          })),
          clean: headed(kept.map(([i, d]) => `${i + 1},${d[0]}`), ["id", "day"]),
          cleanDateStyle: pgStyle,
        }),
      });
    }
  }
  {
    const formulas = ["=cmd()", "+1+1", "-2+3", "@SUM(A1)", '"=HYPERLINK(""http://x"",""y"")"'];
    const rows = formulas.map((note, i) => orderRow(i + 1, { note }));
    const bad = orderRow(6, { id: "=1+1", note: "=cmd()" });
    add({
      name: "formula-values",
      file: "formulas.csv",
      what: "formula-like values (=cmd(), +1+1, -2+3, @SUM(A1), =HYPERLINK)",
      table: "orders",
      bytes: text(headed([...rows, bad])),
      expect: () => ({
        status: "succeeded_with_rejects",
        rejects: [{ line: 7, column: "id", reason: 'invalid input syntax for type bigint: "=1+1"' }],
        clean: headed(rows),
        rejectsCsv: "line_number,column,reason,raw_record\r\n" +
          `"7","id","invalid input syntax for type bigint: ""=1+1""","'${bad.replaceAll('"', '""')}"\r\n`,
      }),
    });
  }
  return cases;
}

/** Streams `bytes` of "a" (no line break) to `path` in 1 MiB writes; never holds more than 1 MiB. */
export async function writeNoNewline(path: string, bytes: number): Promise<void> {
  const block = new Uint8Array(MiB).fill(0x61);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let left = bytes; left > 0; left -= MiB) {
      const piece = left >= MiB ? block : block.subarray(0, left);
      for (let done = 0; done < piece.length;) done += await file.write(piece.subarray(done));
    }
  } finally {
    file.close();
  }
}
