/**
 * The file encodings (encoding.ts) against PostgreSQL's own conversions (SUPABASE_DB_URL, else the local stack):
 * every byte of every single-byte encoding decodes to what `convert_from(…, 'WIN1252' | 'LATIN1' | 'LATIN9')`
 * returns, or is refused with the server's message where the server refuses it; and the parser, the fast path
 * and the sniffer read files in those encodings by the same rules, at every piece boundary.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  FILE_ENCODINGS,
  guessSingleByteEncoding,
  PG_ENCODING,
  textCodec,
  UndecodableError,
} from "./encoding.ts";
import type { CsvFormat } from "./format.ts";
import { createRecordParser, type CsvRecord } from "./parser.ts";
import { sniffDialect } from "./dialect.ts";
import { CsvError } from "./errors.ts";
import { compileFastRow } from "../load/fast_row.ts";
import { CopyPiece } from "../load/copy_piece.ts";
import { builtinColumn as column } from "../pg_types/columns.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL") ?? "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
const SINGLE_BYTE = FILE_ENCODINGS.filter((e) => textCodec(e).singleByte);

Deno.test({
  name: "single-byte encodings decode every byte as PostgreSQL's convert_from does, refusals included",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const sql = postgres(DB_URL, { max: 1, prepare: false, onnotice: () => {} });
  try {
    for (const encoding of SINGLE_BYTE) {
      const codec = textCodec(encoding);
      for (let b = 1; b < 256; b++) {
        const bytes = new Uint8Array([b]);
        let server: string | Error;
        try {
          [{ server }] = await sql<{ server: string }[]>`
            select convert_from(${bytes}::bytea, ${PG_ENCODING[encoding]}) as server`;
        } catch (error) {
          server = error as Error;
        }
        const problem = codec.problem(bytes, 0, 1, 0);
        if (server instanceof Error) {
          assert.throws(() => codec.strict(bytes), UndecodableError, `${encoding} 0x${b.toString(16)}`);
          assert.equal(problem, server.message, `${encoding} 0x${b.toString(16)}: the server's words`);
          assert.equal(codec.lossy(bytes), "\ufffd");
        } else {
          assert.equal(codec.strict(bytes), server, `${encoding} 0x${b.toString(16)}`);
          assert.equal(problem, null);
        }
      }
    }
  } finally {
    await sql.end();
  }
});

const LATIN_TEXT = 'id,name,note\n1,Café,"naïve, «quoted» text"\n2,Straße,œuvre €5\n3,ÆØÅ,"two\nlines ÿ"\n';

/** Encodes text in a single-byte encoding (every character must exist in it). */
function encode(text: string, encoding: typeof SINGLE_BYTE[number]): Uint8Array {
  const codec = textCodec(encoding);
  const reverse = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    try {
      reverse.set(codec.strict(new Uint8Array([b])), b);
    } catch { /* a byte without a character */ }
  }
  return Uint8Array.from(text, (ch) => {
    const b = reverse.get(ch);
    if (b === undefined) throw new Error(`${JSON.stringify(ch)} is not in ${encoding}`);
    return b;
  });
}

function parse(bytes: Uint8Array, format: CsvFormat, piece: number): CsvRecord[] {
  const p = createRecordParser({ format, maxRecordBytes: 1 << 16 });
  const out: CsvRecord[] = [];
  for (let i = 0; i < bytes.length; i += piece) out.push(...p.push(bytes.subarray(i, i + piece)));
  out.push(...p.finish());
  return out;
}

Deno.test("the parser reads single-byte files: same fields as the UTF-8 file, offsets of the file's bytes", () => {
  for (const encoding of SINGLE_BYTE) {
    const text = encoding === "iso-8859-1" ? LATIN_TEXT.replace("€", "E").replace("œ", "oe") : LATIN_TEXT;
    const bytes = encode(text, encoding);
    const format: CsvFormat = { delimiter: ",", quote: '"', newline: "\n", encoding };
    const reference = parse(new TextEncoder().encode(text), { ...format, encoding: undefined }, 1 << 16);
    for (const piece of [1, 2, 3, 7, 1 << 16]) {
      const records = parse(bytes, format, piece);
      assert.deepEqual(records.map((r) => r.fields), reference.map((r) => r.fields), `${encoding}/${piece}`);
      assert.deepEqual(records.map((r) => r.line), [1, 2, 3, 4]);
      // Offsets and lengths are the file's bytes: one per character here.
      let at = 0;
      for (const r of records) {
        assert.equal(r.offset, at);
        assert.equal(r.raw, text.slice(at, at + r.byteLength));
        at += r.byteLength + 1;
      }
    }
  }
});

Deno.test("a Windows-1252 byte without a character rejects its record with PostgreSQL's message", () => {
  const bytes = new Uint8Array([
    ...encode("a,b\n1,x", "windows-1252"),
    0x81,
    ...encode("y\n2,ok\n", "windows-1252"),
  ]);
  const records = parse(bytes, { delimiter: ",", quote: '"', newline: "\n", encoding: "windows-1252" }, 4);
  assert.equal(records.length, 3);
  assert.equal(records[1].issue?.code, "untranslatable");
  assert.equal(
    records[1].issue?.message,
    'character with byte sequence 0x81 in encoding "WIN1252" has no equivalent in encoding "UTF8"',
  );
  assert.equal(records[1].raw, "1,x\ufffdy");
  assert.deepEqual(records[2].fields, ["2", "ok"]);
});

Deno.test("the fast path leaves records with bytes above 0x7F to the string path in single-byte files", () => {
  const columns = {
    expected_fields: 2,
    ignored: [],
    mapped: [{ field: 0, header: "id", column: column("id", "int4") }, {
      field: 1,
      header: "name",
      column: column("name", "text"),
    }],
  };
  const latin = compileFastRow(columns, {
    delimiter: ",",
    quote: '"',
    newline: "\n",
    encoding: "iso-8859-1",
  })!;
  const utf8 = compileFastRow(columns, { delimiter: ",", quote: '"', newline: "\n" })!;
  const piece = new CopyPiece();
  const plain = new TextEncoder().encode("1,plain");
  assert.equal(latin(plain, 0, plain.length, piece), true);
  const accented = encode("2,Café", "iso-8859-1");
  assert.equal(latin(accented, 0, accented.length, piece), false);
  const quoted = encode('3,"Café"', "iso-8859-1");
  assert.equal(latin(quoted, 0, quoted.length, piece, true), false);
  const utf8Accented = new TextEncoder().encode("2,Café");
  assert.equal(utf8(utf8Accented, 0, utf8Accented.length, piece), true);
});

Deno.test("a file that is not UTF-8 fails sniffing with the likely encoding and the setting that reads it", () => {
  const cases: [Uint8Array, string][] = [
    [encode("name,price\nCafé,“5”\n", "windows-1252"), "windows-1252"],
    [encode("name\nCafé\n", "iso-8859-1"), "windows-1252"],
    [new Uint8Array([...encode("name\nx", "iso-8859-1"), 0x81, 0xe9, 0x0a]), "iso-8859-1"],
  ];
  for (const [bytes, likely] of cases) {
    assert.equal(guessSingleByteEncoding(bytes), likely);
    assert.throws(() => sniffDialect(bytes), (e: unknown) => {
      assert.ok(e instanceof CsvError && e.code === "invalid_utf8");
      assert.match(
        e.message,
        /^File is not UTF-8 text: invalid byte 0x[0-9A-F]{2} at line 2 \(offset \d+\)\./,
      );
      assert.ok(e.message.includes(`set the profile's encoding to ${likely}`), e.message);
      return true;
    });
    const dialect = sniffDialect(bytes, { encoding: likely as "windows-1252" });
    assert.equal(dialect.encoding, likely);
  }
  const sniffed = sniffDialect(encode("nom;ville\nZoé;Besançon\nÉlise;Orléans\n", "iso-8859-15"), {
    encoding: "iso-8859-15",
  });
  assert.deepEqual(sniffed.header, ["nom", "ville"]);
  assert.equal(sniffed.delimiter, ";");
  assert.throws(
    () => sniffDialect(new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0x0a]), { encoding: "windows-1252" }),
    /UTF-8 byte-order mark, but its profile says it is Windows-1252: set the profile's encoding to utf-8/,
  );
  // UTF-8 text under a single-byte profile would load as "CafÃ©": refused, naming the setting.
  assert.throws(
    () => sniffDialect(new TextEncoder().encode("name\nplain\nCafé\n"), { encoding: "iso-8859-1" }),
    /^CsvError: File looks like UTF-8 text \(its first bytes above ASCII, at line 3, are "é" in UTF-8\), but its profile says it is ISO-8859-1 \(Latin-1\): set the profile's encoding to utf-8$/,
  );
  // Bytes that are not UTF-8 somewhere after a valid-looking sequence: a single-byte file after all.
  assert.equal(
    sniffDialect(new Uint8Array([...new TextEncoder().encode("n\nÃ©\n"), 0xe9, 0x0a]), {
      encoding: "windows-1252",
    })
      .encoding,
    "windows-1252",
  );
});
