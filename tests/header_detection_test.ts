/**
 * Issue 11, items 4 and 12: whether a file's first row is its header is decided explicitly, recorded in the
 * job (dialect.has_header, header_source, header_reason), and explained when the header does not fit; a header
 * row is held to MAX_RECORD_BYTES like any other record.
 *
 * Against the real local stack. Each case uploads one small file under its own profile into its own table of
 * text columns (so a header row read as data would load without a complaint) and checks the job's outcome:
 * - a header with a trailing delimiter, one with an empty name, and one whose names are numbers (2023, 2024)
 *   are headers, because their names are the target's columns: exactly the data rows load;
 * - a first row that does not fit either way fails with what did not match (unknown names, empty names,
 *   required columns missing) and never tells the user to "add a header row";
 * - a header longer than MAX_RECORD_BYTES (1 MiB in the local stack) fails the job, naming the limit and
 *   the header's length.
 */
import assert from "node:assert/strict";
import { connect, E2E, Scope, type Sql, unique, upload, waitForJob } from "./support/stack.ts";

/** MAX_RECORD_BYTES of the local stack's functions (the default). */
const MAX_RECORD_BYTES = 1024 * 1024;

interface Case {
  name: string;
  /** Column definitions of the target table. */
  columns: string;
  hasHeader?: boolean | null;
  /** The profile's column_aliases. */
  aliases?: Record<string, string[]>;
  text: string;
  /** Rows the table must hold afterwards (ordered by its first column), or the job's error. */
  rows?: string[][];
  error?: RegExp[];
  /** Substrings the error must not contain. */
  notInError?: string[];
  /** Expected dialect fields of the job. */
  dialect?: Record<string, unknown>;
}

const CASES: Case[] = [
  {
    name: "trailing delimiter",
    columns: "a text, b text, c text, d text",
    text: "a,b,c,\nx1,y1,z1,\nx2,y2,z2,\n",
    rows: [["x1", "y1", "z1", null as unknown as string], ["x2", "y2", "z2", null as unknown as string]],
    dialect: {
      has_header: true,
      header: ["a", "b", "c", ""],
      header_source: "sniffed",
      header_reason: /its first row names columns of .* \("a", "b", "c"\)/,
    },
  },
  {
    name: "empty name",
    columns: "a text, b text, c text",
    text: "a,,c\nx1,y1,z1\nx2,y2,z2\n",
    rows: [["x1", null as unknown as string, "z1"], ["x2", null as unknown as string, "z2"]],
    dialect: { has_header: true, header: ["a", "", "c"] },
  },
  {
    name: "numeric names",
    columns: '"2023" text, "2024" text',
    text: "2023,2024\n10,20\n11,21\n",
    rows: [["10", "20"], ["11", "21"]],
    dialect: { has_header: true, header: ["2023", "2024"], header_reason: /names columns .*"2023", "2024"/ },
  },
  {
    name: "alias names with a trailing delimiter",
    columns: "a text, b text, c text",
    aliases: { a: ["Alpha"] },
    text: "Alpha,B,\nx1,y1,\n",
    rows: [["x1", "y1", null as unknown as string]],
  },
  {
    name: "profile says no header",
    columns: "a text, b text",
    hasHeader: false,
    text: "a,b\nx1,y1\n",
    rows: [["a", "b"], ["x1", "y1"]],
    dialect: {
      has_header: false,
      header_source: "profile",
      header_reason: "the profile sets has_header to false",
    },
  },
  {
    name: "first row fits neither way",
    columns: "a text not null, b text, c text, d text",
    text: "foo,bar,,baz,qux\nx1,y1,z1,w1,v1\n",
    error: [
      /^The file has 5 fields per row but public\.\S+ has only 4 writable columns/,
      /Line 1 was read as data, not a header, because its first row has an empty field \(field 3 of 5\)\./,
      /the names "foo", "bar", "baz", "qux" match no column of public\.\S+; one name is empty; required column "a" is missing\.$/,
    ],
    notInError: ["add a header row"],
  },
  {
    name: "profile says header, first row is data",
    columns: "a text not null, b text not null, n int",
    hasHeader: true,
    text: "1,2,3\n4,5,6\n",
    error: [
      /^The file lacks required columns of public\.\S+: "a", "b" \(the header has: "1", "2", "3"\)\./,
      /Line 1 was read as a header because the profile sets has_header to true\./,
      /The names "1", "2", "3" match no column of public\.\S+; required columns "a", "b" are missing\./,
      /If line 1 is data, set the profile's has_header to false\.$/,
    ],
    notInError: ["add a header row"],
  },
  {
    name: "long unknown names are cut in the error",
    columns: "a text not null",
    hasHeader: true,
    text: `${"n".repeat(500)},b\n1,2\n`,
    error: [/The names "n{79}…", "b" match no column of public\.\S+; required column "a" is missing\./],
  },
  {
    name: "header of exactly MAX_RECORD_BYTES",
    columns: "a text, b text",
    hasHeader: true,
    text: `a,b,${"x".repeat(MAX_RECORD_BYTES - 4)}\r\n1,2,3\r\n`,
    rows: [["1", "2"]],
  },
  {
    name: "header longer than MAX_RECORD_BYTES",
    columns: "a text, b text",
    hasHeader: true,
    text: `a,b,${"x".repeat(MAX_RECORD_BYTES)}\n1,2,3\n`,
    error: [
      new RegExp(
        `^The header row \\(line 1\\) is ${
          MAX_RECORD_BYTES + 4
        } bytes long; the limit is ${MAX_RECORD_BYTES} ` +
          "bytes \\(MAX_RECORD_BYTES\\)",
      ),
    ],
  },
];

async function runCase(sql: Sql, scope: Scope, c: Case) {
  const table = `public.${unique("e2e_header")}`;
  scope.tables.push(table);
  await sql.unsafe(`create table ${table} (${c.columns})`);
  const object = scope.object(`${c.name.replaceAll(" ", "_")}.csv`);
  const profile = await scope.profile({
    pathPattern: object,
    targetTable: table,
    hasHeader: c.hasHeader ?? null,
  });
  if (c.aliases) {
    await sql`update csv_import.profiles set column_aliases = ${sql.json(c.aliases)} where id = ${profile}`;
  }
  await upload(object, c.text);
  const job = await waitForJob(sql, object, 60_000);
  const [{ dialect }] = await sql<{ dialect: Record<string, unknown> | null }[]>`
    select dialect from csv_import.jobs where id = ${job.id}`;
  if (c.error) {
    assert.equal(job.status, "failed", `${c.name}: ${JSON.stringify(job)}`);
    for (const re of c.error) assert.match(job.error ?? "", re, c.name);
    for (const s of c.notInError ?? []) assert.ok(!job.error?.includes(s), `${c.name}: ${job.error}`);
    return;
  }
  assert.equal(job.status, "succeeded", `${c.name}: ${job.error}`);
  const rows = (await sql.unsafe(`select * from ${table} order by 1`).values()).map((r) => [...r]);
  assert.deepEqual(rows, c.rows, c.name);
  for (const [key, want] of Object.entries(c.dialect ?? {})) {
    const got = dialect?.[key];
    if (want instanceof RegExp) assert.match(String(got), want, `${c.name}: dialect.${key}`);
    else assert.deepEqual(got, want, `${c.name}: dialect.${key}`);
  }
  assert.equal(typeof dialect?.header_reason, "string", `${c.name}: the job records why`);
}

Deno.test(
  "header rows are detected explicitly, recorded, explained, and held to MAX_RECORD_BYTES",
  E2E,
  async (t) => {
    const sql = connect();
    const scope = new Scope(sql, "header");
    try {
      for (const c of CASES) {
        await t.step(c.name, () => runCase(sql, scope, c));
      }
    } finally {
      await scope.dispose();
      await sql.end();
    }
  },
);
