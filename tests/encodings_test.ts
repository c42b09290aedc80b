/**
 * Files in Windows-1252, ISO-8859-1 and ISO-8859-15 (issue 15), loaded through the pipeline at small chunk sizes
 * against the real local stack and compared with `psql \copy … (encoding '<PostgreSQL's name>')` of the same
 * bytes:
 * - the valid rows load with exactly the values `\copy` stores (checksums of the whole rows), with characters
 *   above 0x7F everywhere, chunk edges among them, quoted fields holding delimiters, quotes and line breaks;
 * - the invalid rows are rejected with their line and PostgreSQL's message (a varchar(12) counts characters,
 *   not bytes; Windows-1252's byte 0x81 has no character), and a reject's raw text is the decoded line;
 * - a file in one of these encodings under a UTF-8 profile fails at registration, naming the likely encoding
 *   and the setting that reads it.
 */
import assert from "node:assert/strict";
import {
  FILE_ENCODINGS,
  type FileEncoding,
  PG_ENCODING,
  textCodec,
} from "../supabase/functions/_shared/csv/encoding.ts";
import { checksum, connect, E2E, psqlCopy, Scope, upload, waitForJob } from "./support/stack.ts";

type SingleByte = Exclude<FileEncoding, "utf-8" | "utf-16le" | "utf-16be">;
const SINGLE_BYTE = FILE_ENCODINGS.filter((e): e is SingleByte => textCodec(e).singleByte);

/** The encoding's characters above 0x7F (printable ones), with their bytes. */
function highCharacters(encoding: SingleByte): Map<string, number> {
  const codec = textCodec(encoding);
  const chars = new Map<string, number>();
  for (let b = 0xa0; b < 0x100; b++) chars.set(codec.strict(new Uint8Array([b])), b);
  if (encoding === "windows-1252") {
    for (let b = 0x80; b < 0xa0; b++) {
      try {
        chars.set(codec.strict(new Uint8Array([b])), b);
      } catch { /* one of the five bytes without a character */ }
    }
  }
  chars.delete("\u00a0"); // no-break space: kept out only for readable failures
  return chars;
}

function encode(text: string, chars: Map<string, number>): Uint8Array {
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0) < 0x80 ? ch.charCodeAt(0) : chars.get(ch)!);
}

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  line: number;
  /** Text of the CSV line(s) without the terminator. */
  text: string;
  /** Bytes to write instead of the text's (a byte without a character). */
  bytes?: Uint8Array;
  /** PostgreSQL's message for an invalid row (null: valid). */
  reason: string | null;
}

const HEADER = "id,name,city,note,amount";

function rows(encoding: SingleByte, chars: Map<string, number>): Row[] {
  const next = random(15);
  const high = [...chars.keys()];
  const word = (n: number) =>
    Array.from(
      { length: n },
      () => next() < 0.5 ? high[Math.floor(next() * high.length)] : "abcxyz"[Math.floor(next() * 6)],
    ).join("");
  const out: Row[] = [];
  let line = 2;
  for (let id = 1; id <= 400; id++) {
    let text: string;
    let reason: string | null = null;
    let bytes: Uint8Array | undefined;
    const kind = id % 50;
    if (kind === 7) {
      text = `${id},${word(5)},${word(13)},plain,1.00`; // 13 characters: too long for varchar(12), whatever the bytes
      reason = "value too long for type character varying(12)";
    } else if (kind === 19) {
      text = `${id},${word(4)},${word(3)},x,1${high[0]}5`;
      reason = `invalid input syntax for type numeric: "1${high[0]}5"`;
    } else if (kind === 33 && encoding === "windows-1252") {
      text = `${id},ab?cd,x,y,2.00`;
      bytes = encode(text, chars);
      bytes[bytes.indexOf(0x3f)] = 0x81;
      reason = 'character with byte sequence 0x81 in encoding "WIN1252" has no equivalent in encoding "UTF8"';
    } else {
      const note = next() < 0.3 ? `"${word(6)}, ""${word(3)}""\n${word(8)}"` : word(Math.floor(next() * 30));
      text = `${id},${word(1 + Math.floor(next() * 20))},${word(Math.floor(next() * 12))},${note},${id}.25`;
    }
    out.push({ line, text, bytes, reason });
    line += text.split("\n").length;
  }
  return out;
}

function fileOf(list: Row[], chars: Map<string, number>): Uint8Array {
  const parts = [encode(HEADER + "\n", chars)];
  for (const r of list) parts.push(r.bytes ?? encode(r.text, chars), new Uint8Array([0x0a]));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const COLUMNS = "id int primary key, name text, city varchar(12), note text, amount numeric(10,2)";

for (const encoding of SINGLE_BYTE) {
  Deno.test({
    name: `a file in ${encoding} loads as \\copy (encoding '${PG_ENCODING[encoding]}') loads it`,
    ...E2E,
  }, async () => {
    const sql = connect();
    const scope = new Scope(sql, `enc_${encoding.replaceAll("-", "")}`);
    try {
      const { table, reference } = await scope.tableAndReference(COLUMNS);
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: table,
        chunkSizeBytes: 2048,
        toleratedRejectRate: 1,
        encoding,
      });
      const chars = highCharacters(encoding);
      const all = rows(encoding, chars);
      const bad = all.filter((r) => r.reason !== null);
      assert.ok(bad.length >= 16);
      const dir = await scope.tempDir();
      await Deno.writeFile(`${dir}/good.csv`, fileOf(all.filter((r) => r.reason === null), chars));
      await psqlCopy(reference, `${dir}/good.csv`, { encoding: PG_ENCODING[encoding]! });
      // \copy of each kind of invalid row alone fails with the message the pipeline must report.
      for (const r of new Map(bad.map((r) => [r.reason, r])).values()) {
        await Deno.writeFile(`${dir}/one.csv`, fileOf([r], chars));
        await assert.rejects(
          psqlCopy(reference, `${dir}/one.csv`, { encoding: PG_ENCODING[encoding]! }),
          (e: Error) => e.message.includes(r.reason!),
        );
      }

      const name = scope.object("latin.csv");
      const file = fileOf(all, chars);
      await upload(name, file);
      const job = await waitForJob(sql, name, 120_000);
      assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
      assert.ok(Number(job.chunk_count) >= 8, `several chunks: ${job.chunk_count}`);
      assert.deepEqual(await checksum(sql, table), await checksum(sql, reference), "same rows as \\copy");
      const [{ text_sample }] = await sql<{ text_sample: string }[]>`
        select name as text_sample from ${sql.unsafe(table)} where id = 1`;
      assert.equal(text_sample, all[0].text.split(",")[1], "the decoded characters are stored");
      const rejects = await sql<{ line_number: string; reason: string; raw_record: string }[]>`
        select line_number, reason, raw_record from csv_import.rejects where job_id = ${job.id}
        order by line_number`;
      assert.deepEqual(
        rejects.map((r) => Number(r.line_number)),
        bad.map((r) => r.line),
        "the refused lines",
      );
      for (const [i, r] of rejects.entries()) {
        assert.ok(r.reason.includes(bad[i].reason!), `line ${r.line_number}: ${r.reason} / ${bad[i].reason}`);
        const raw = bad[i].bytes ? textCodec(encoding).lossy(bad[i].bytes!) : bad[i].text;
        assert.equal(r.raw_record, raw, `line ${r.line_number}: the raw text, decoded`);
      }
    } finally {
      await scope.dispose();
      await sql.end();
    }
  });
}

Deno.test(
  { name: "a Windows-1252 file under a UTF-8 profile fails, naming the encoding to set", ...E2E },
  async () => {
    const sql = connect();
    const scope = new Scope(sql, "enc_refused");
    try {
      const table = await scope.table("enc_refused");
      await scope.profile({ pathPattern: `${scope.prefix}/%`, targetTable: table });
      const chars = highCharacters("windows-1252");
      const name = scope.object("export.csv");
      await upload(name, encode("id,name,email\n1,Zoë “Z”,z@example.com\n", chars));
      const job = await waitForJob(sql, name);
      assert.equal(job.status, "failed");
      assert.match(
        job.error ?? "",
        /^File is not UTF-8 text: invalid byte 0xEB at line 2 \(offset 18\)\. It looks like Windows-1252, where that byte is "ë": set the profile's encoding to windows-1252/,
      );
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);

/** UTF-16 bytes of `text` (code units as they are, unpaired surrogates included), with a byte-order mark. */
function utf16(text: string, be: boolean, bom = true): Uint8Array {
  const out = new Uint8Array((bom ? 2 : 0) + 2 * text.length);
  if (bom) out.set(be ? [0xfe, 0xff] : [0xff, 0xfe]);
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    out.set(be ? [u >> 8, u & 0xff] : [u & 0xff, u >> 8], (bom ? 2 : 0) + 2 * i);
  }
  return out;
}

for (const encoding of ["utf-16le", "utf-16be"] as const) {
  Deno.test({ name: `a ${encoding} file loads as \\copy loads its text in UTF-8`, ...E2E }, async () => {
    const sql = connect();
    const scope = new Scope(sql, `enc_${encoding.replaceAll("-", "")}`);
    try {
      const { table, reference } = await scope.tableAndReference(COLUMNS);
      // LE under a profile that says nothing (the byte-order mark decides), BE named by its profile.
      // An odd chunk size: the planner rounds it to whole code units (boundedChunkSize).
      await scope.profile({
        pathPattern: `${scope.prefix}/%`,
        targetTable: table,
        chunkSizeBytes: 2047,
        toleratedRejectRate: 1,
        ...(encoding === "utf-16be" ? { encoding } : {}),
      });
      // Characters of one and of two code units (surrogate pairs), so chunk edges fall between and inside both.
      const chars = ["中", "文", "ü", "€", "😀", "👍", "𝄞", "a", "b", " "];
      const next = random(16);
      const word = (n: number) =>
        Array.from({ length: n }, () => chars[Math.floor(next() * chars.length)]).join("");
      const rows: { line: number; text: string; reason: string | null }[] = [];
      let line = 2;
      for (let id = 1; id <= 300; id++) {
        let text: string;
        let reason: string | null = null;
        if (id % 40 === 7) {
          text = `${id}\t${word(3)}\t${"😀".repeat(13)}\tx\t1.00`; // 13 characters (26 code units): too long
          reason = "value too long for type character varying(12)";
        } else if (id % 40 === 21) {
          text = `${id}\tab\uD800cd\tx\ty\t2.00`; // an unpaired surrogate
          reason = "invalid UTF-16: unpaired surrogate at offset";
        } else {
          const note = next() < 0.3
            ? `"${word(5)}\t""${word(2)}""\n${word(6)}"`
            : word(Math.floor(next() * 20));
          // 12 characters fit varchar(12) however many code units they take.
          text = `${id}\t${word(1 + Math.floor(next() * 15))}\t${
            id % 9 === 0 ? "😀".repeat(12) : word(Math.floor(next() * 12))
          }\t${note}\t${id}.50`;
        }
        rows.push({ line, text, reason });
        line += text.split("\n").length;
      }
      const header = "id\tname\tcity\tnote\tamount\n";
      const dir = await scope.tempDir();
      const good = rows.filter((r) => r.reason === null);
      // \copy reads the same text in UTF-8 (PostgreSQL has no UTF-16), tab-delimited.
      await Deno.writeTextFile(`${dir}/good.tsv`, header + good.map((r) => r.text).join("\n") + "\n");
      await psqlCopy(reference, `${dir}/good.tsv`, { delimiter: "\t" });

      const name = scope.object("unicode.txt");
      await upload(name, utf16(header + rows.map((r) => r.text).join("\n") + "\n", encoding === "utf-16be"));
      const job = await waitForJob(sql, name, 120_000);
      assert.equal(job.status, "succeeded_with_rejects", job.error ?? "");
      assert.ok(Number(job.chunk_count) >= 8, `several chunks: ${job.chunk_count}`);
      const [{ dialect }] = await sql<{ dialect: { encoding: string; delimiter: string } }[]>`
        select dialect from csv_import.jobs where id = ${job.id}`;
      assert.deepEqual([dialect.encoding, dialect.delimiter], [encoding, "\t"]);
      assert.deepEqual(await checksum(sql, table), await checksum(sql, reference), "same rows as \\copy");
      const rejects = await sql<{ line_number: string; reason: string }[]>`
        select line_number, reason from csv_import.rejects where job_id = ${job.id} order by line_number`;
      const bad = rows.filter((r) => r.reason !== null);
      assert.deepEqual(
        rejects.map((r) => Number(r.line_number)),
        bad.map((r) => r.line),
        "the refused lines",
      );
      for (const [i, r] of rejects.entries()) {
        assert.ok(r.reason.includes(bad[i].reason!), `line ${r.line_number}: ${r.reason} / ${bad[i].reason}`);
      }
    } finally {
      await scope.dispose();
      await sql.end();
    }
  });
}
