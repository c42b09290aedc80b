/**
 * The all-types differential (issue 15): every base type of the connected server that has a text input function
 * (discovered from its catalog at test time: pg_catalog's and the extensions schema's base, range and multirange
 * types), arrays of each, a domain with a CHECK, an enum, a composite, typmods (numeric(5,2), varchar(3),
 * bit(3), ...), citext, hstore, PostGIS geometry/geography (where the server has PostGIS: Debian's on 15) and
 * pgvector (where available), loaded through the pipeline at 4 KiB chunks and through `psql \copy`:
 * - each row's fate is decided by `\copy` of that row alone on the same server (one psql process per table, many
 *   `\copy` commands, errors kept going);
 * - the pipeline must store exactly the rows `\copy` accepts (checksums of the whole rows' text, equal to those of
 *   `\copy` of the accepted rows as one file, and of the rows copied alone), reject exactly the lines `\copy`
 *   refuses, each with PostgreSQL's message;
 * - identity and stored generated columns left out of the file behave as `\copy` with the same column list.
 * Values are generated per type: known literals (with commas, quotes and line breaks, so quoted fields cross the
 * chunk edges), checked against the server first; a type whose input refuses everything (pg_node_tree,
 * pg_ndistinct, gtsvector, ...) gets invalid rows only. Runs on the stack's 17 in the main run and on 15 in
 * scripts/other_major.sh.
 */
import assert from "node:assert/strict";
import {
  checksum,
  connect,
  E2E,
  psql,
  psqlCopy,
  Scope,
  type Sql,
  upload,
  waitForJob,
} from "./support/stack.ts";

/** Valid literals by type name (pg_type.typname); each is checked against the server before use. */
const VALID: Record<string, string[]> = {
  bool: ["t", "false", " yes ", "0"],
  int2: ["0", "-32768", " 42 ", "+7"],
  int4: ["2147483647", "-7", "+3", "007"],
  int8: ["9223372036854775807", "-1", "-9223372036854775808"],
  numeric: ["3.14159", "-1e-5", "NaN", "Infinity", "12345678901234567890.123456789"],
  float4: ["1.5", "-Infinity", "NaN", "3.4e38", "1e-45"],
  float8: ["2.5e300", "-0", "1e-310", " 1.5 "],
  money: ["$12.50", "-1.5", "1,000.00"],
  char: ["a", "Z"],
  name: ["abc", 'a, "quoted" name'],
  text: ["hello", 'comma, "quote"\nnewline', "", "back\\slash\ttab"],
  varchar: ["x", 'long, with "quotes"'],
  bpchar: ["ab  ", "c"],
  bytea: ["\\x0102ff", "abc", "\\\\"],
  date: ["2024-02-29", "infinity", "4713-01-01 BC", "2024-1-5", "20240101"],
  time: ["10:00", "23:59:59.999999", "24:00:00", "1:2:3"],
  timetz: ["10:00+02", "04:05:06 PST", "23:00:00-03:30"],
  timestamp: ["2024-01-01 10:00:00", "-infinity", "2024-06-01T12:34:56.789", "2024-01-01"],
  timestamptz: ["2024-01-01 10:00:00+02", "2024-01-01 10:00:00", "epoch", "2024-03-10 02:30:00 EST"],
  interval: ["1 day 02:00:00", "P1Y2M", "-3 hours", "1 mon -2 days", "@ 1 minute ago"],
  uuid: ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}"],
  json: ['{"a": [1, 2, "x,y"]}', "null", '"str"', " [1,\n2] "],
  jsonb: ['{"a": [1, 2, "x,y"]}', "null", '"str"', '{"b": 1, "b": 2}'],
  jsonpath: ["$.a[*] ? (@ > 1)", "strict $.b"],
  xml: ["<a>1</a>", "text only"],
  inet: ["10.0.0.1/8", "::1", "192.168.0.1"],
  cidr: ["10.0.0.0/8", "2001:db8::/32", "192.168"],
  macaddr: ["08:00:2b:01:02:03", "0800.2b01.0203"],
  macaddr8: ["08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03"],
  bit: ["1", "0"],
  varbit: ["10101", ""],
  point: ["(1,2)", "3.5, -1"],
  line: ["{1,-1,0}", "[(0,0),(1,1)]"],
  lseg: ["[(0,0),(1,1)]"],
  box: ["(1,1),(0,0)"],
  path: ["[(0,0),(1,1),(2,0)]", "((0,0),(1,1))"],
  polygon: ["((0,0),(1,1),(1,0))"],
  circle: ["<(0,0),1>", "((1,1),2)"],
  oid: ["1", "4294967295"],
  regproc: ["pg_catalog.now"],
  regprocedure: ["pg_catalog.abs(integer)"],
  regoper: ["||/"],
  regoperator: ["+(integer,integer)"],
  regclass: ["pg_catalog.pg_class"],
  regtype: ["integer", "character varying(3)"],
  regrole: ["postgres"],
  regnamespace: ["pg_catalog"],
  regconfig: ["english"],
  regdictionary: ["simple"],
  regcollation: ['"C"'],
  tid: ["(0,1)"],
  xid: ["1"],
  xid8: ["1"],
  cid: ["1"],
  pg_lsn: ["0/16B3748", "FFFFFFFF/FFFFFFFF"],
  pg_snapshot: ["10:20:10,14,15"],
  txid_snapshot: ["10:20:10,14,15"],
  tsvector: ["a fat cat", "'quoted, word':1A"],
  tsquery: ["fat & rat", "!cat"],
  refcursor: ["cur"],
  aclitem: ["postgres=r/postgres", "=r/postgres"],
  int2vector: ["1 2 3"],
  oidvector: ["1 2"],
  citext: ["Alice", "MiXeD, case"],
  hstore: ['a=>1, b=>"x y"', ""],
  geometry: ["POINT(1 2)", "SRID=4326;LINESTRING(0 0,1 1)", "0101000000000000000000F03F0000000000000040"],
  geography: ["POINT(1 2)", "SRID=4326;POINT(-71.06 42.36)"],
  box2d: ["BOX(0 0,1 1)"],
  box3d: ["BOX3D(0 0 0,1 1 1)"],
  spheroid: ['SPHEROID["GRS_1980",6378137,298.257222101]'],
  vector: ["[1,2,3]"],
  halfvec: ["[1,2,3]"],
  sparsevec: ["{1:1,3:2}/3"],
  int4range: ["[1,5)", "empty", "(,10]"],
  int8range: ["[1,2]"],
  numrange: ["(1.5,2.5]"],
  daterange: ["[2024-01-01,2024-02-01)"],
  tsrange: ['["2024-01-01 00:00","2024-01-02 00:00")'],
  tstzrange: ['["2024-01-01 00:00+00",infinity)'],
};

/** Invalid literals by type name (each checked to be refused by the server before use). */
const INVALID: Record<string, string[]> = {
  bool: ["maybe"],
  int2: ["32768", "1.5"],
  int4: ["2147483648", "12abc"],
  int8: ["9223372036854775808"],
  numeric: ["abc", "1e1000000"],
  float4: ["1e39", "x"],
  float8: ["1e309"],
  money: ["$abc"],
  bytea: ["\\x0"],
  date: ["2024-02-30", "2024-13-01"],
  time: ["25:00"],
  timetz: ["10:00+16"],
  timestamp: ["2024-01-01 25:00"],
  timestamptz: ["2024-01-01 10:00 Nowhere/Land"],
  interval: ["1 parsec"],
  uuid: ["a0eebc99-9c0b"],
  json: ['{"a":}'],
  jsonb: ['{"a" 1}'],
  jsonpath: ["$.a["],
  xml: ["<a>"],
  inet: ["999.1.1.1"],
  cidr: ["10.0.0.1/8"],
  macaddr: ["08:00:2b"],
  bit: ["2"],
  varbit: ["102"],
  point: ["(1,2"],
  oid: ["4294967296"],
  regclass: ["pg_catalog.no_such_table"],
  regtype: ["no_such_type"],
  regrole: ["no_such_role"],
  regproc: ["no_such_function"],
  regnamespace: ["no_such_schema"],
  pg_lsn: ["0/G"],
  tsquery: ["fat &"],
  aclitem: ["nobody_at_all=r/postgres"],
  hstore: ['a=>"b'],
  geometry: ["POINT(1 2", "NOT WKT"],
  geography: ["POINT(1"],
  vector: ["[1,x]"],
  int4range: ["[5,1)", "[1,"],
};
/**
 * More candidates for the types the pipeline's converters check byte by byte (pg_types/convert.ts): edge forms whose
 * fate only the server decides here (valid or invalid is sorted out against it, like every literal).
 */
const EDGES: Record<string, string[]> = {
  bool: ["TRUE", "on", "of", "1 ", " t", "n", "", "yes please"],
  int2: ["-0", "0x1F", " +42", "1e3", "", "--1", "1_000", "-32769"],
  int4: ["1_000", "  -2147483648  ", "2147483647.0", "0o17", "0b101", "+", "1 2"],
  int8: ["0o17", "0b101", "0x7FFFFFFFFFFFFFFF", "-9223372036854775809", " 12 "],
  numeric: [
    "1_000.5",
    ".5",
    "5.",
    "-.5e-3",
    "inf",
    "-Infinity",
    " 1 ",
    "1 2",
    "0x1A",
    "1e-16384",
    "1e131071",
  ],
  float4: ["1e-46", "3.5e38", "inf", "-INF", "nan", "  1.5e+2 ", "1.5e", "0x10"],
  float8: ["1e-400", "4.9e-324", "Infinity", "-1.7976931348623157e308", "1e 5", "1.0e-323"],
  date: [
    "0001-01-01",
    "5874897-12-31",
    "5874898-01-01",
    "epoch",
    "J2451187",
    "January 8, 1999",
    "1999-Jan-08",
    "2024-02-29 10:00",
    "2023-02-29",
    "2024-06-31",
    "0000-01-01",
  ],
  time: ["allballs", "04:05 PM", "040506", "24:00:01", "10:00:00.1234567", "10:60", "23:59:60"],
  timestamp: [
    "2024-02-29 24:00",
    "1999-01-08 04:05:06 -8:00",
    "294277-01-01",
    "infinity",
    "2024-01-01 10:00:60",
    "2024-01-01T10:00:00Z",
    "2024-01-01 10:00:00.9999995",
    "4714-11-24 00:00:00 BC",
    "4714-11-23 23:59:59 BC",
  ],
  timestamptz: [
    "2024-01-01 10:00:00 CET",
    "2024-07-01 10:00 +05:45",
    "2024-01-01 10:00:00.999999999",
    "2024-01-01 10:00 Europe/Berlin",
    "2024-01-01 10:00:00+14:01",
    "2024-01-01 10:00:00 +1",
  ],
  uuid: [
    "A0EEBC999C0B4EF8BB6D6BB9BD380A11",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
    " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ",
    "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
  ],
  json: ['{"a":1e400}', '"\\u0000"', '"\\ud83d"', "[1,2", "tru", '{"a":1,}', '"\\u00e9, ok"', "-0.0e-0"],
  jsonb: ['{"a":1e400}', '"\\u0000"', '"\\ud83d\\ude00"', "[1,2", '{"a":1,}', "1e1000000", '{"":""}'],
  bytea: ["\\x", "\\xZZ", "a\\\\b", "\\001", "\\", "\\x 01 02", "\\400", "\\xabc"],
};
const GENERIC_INVALID = ["not a value ☃", "(1,2"];
const GENERIC_VALID = ["0", "1", "(0,0)", "{}", "x"];

interface Column {
  name: string;
  /** The column's type as DDL. */
  type: string;
  valid: string[];
  invalid: string[];
}

/** `'…'` with quotes doubled (for SQL text built here from the test's own literals). */
const lit = (v: string) => `'${v.replaceAll("'", "''")}'`;

async function accepted(sql: Sql, value: string, type: string): Promise<boolean> {
  try {
    await sql.unsafe(`select ${lit(value)}::${type}`);
    return true;
  } catch {
    return false;
  }
}

async function filterValues(sql: Sql, values: string[], type: string, want: boolean): Promise<string[]> {
  const out: string[] = [];
  for (const v of values) if (await accepted(sql, v, type) === want) out.push(v);
  return out;
}

/** An array element in array-literal syntax (always quoted). */
const element = (v: string) => `"${v.replace(/[\\"]/g, "\\$&")}"`;

/** The connected server's base, range and multirange types with an input function (pg_catalog, extensions). */
async function discoverTypes(sql: Sql, log: string[]): Promise<{ scalars: Column[]; arrays: Column[] }> {
  const types = await sql<{ typname: string; type: string; array: string | null; range: string | null }[]>`
    select t.typname::text,
      -- Spelled by name, not by format_type: "character" and "bit" in DDL mean char(1) and bit(1).
      pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname) as type,
      case when t.typarray <> 0 then pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname) || '[]'
        end as array,
      (select pg_catalog.quote_ident(rn.nspname) || '.' || pg_catalog.quote_ident(rt.typname)
       from pg_catalog.pg_range r join pg_catalog.pg_type rt on rt.oid = r.rngtypid
         join pg_catalog.pg_namespace rn on rn.oid = rt.typnamespace
       where r.rngmultitypid = t.oid) as range
    from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    where t.typisdefined and t.typinput <> 0 and t.typtype in ('b', 'r', 'm')
      and n.nspname in ('pg_catalog', 'extensions')
      and t.typcategory <> 'P'
      and not exists (select 1 from pg_catalog.pg_type e where e.typarray = t.oid)
    order by t.typname`;
  const scalars: Column[] = [];
  const arrays: Column[] = [];
  const onlyInvalid: string[] = [];
  const noInvalid: string[] = [];
  const validByRange = new Map<string, string[]>();
  for (const t of types) {
    // Usable as a column?
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe(`create temp table all_types_probe (x ${t.type})`);
        throw new Error("rollback");
      });
    } catch (e) {
      if ((e as Error).message !== "rollback") {
        log.push(`${t.type}: not usable as a column (${(e as Error).message})`);
        continue;
      }
    }
    let candidates = VALID[t.typname] ?? [];
    if (t.range !== null) {
      const inner = validByRange.get(t.range) ?? [];
      candidates = ["{}", ...inner.filter((r) => r !== "empty").map((r) => `{${r}}`)];
      if (inner.length > 1) candidates.push(`{${inner.filter((r) => r !== "empty").join(", ")}}`);
    }
    if (candidates.length === 0) candidates = GENERIC_VALID;
    const edges = EDGES[t.typname] ?? [];
    const valid = await filterValues(sql, [...candidates, ...edges], t.type, true);
    validByRange.set(t.type, valid);
    const invalid = await filterValues(
      sql,
      [...(INVALID[t.typname] ?? []), ...edges, ...GENERIC_INVALID],
      t.type,
      false,
    );
    if (valid.length === 0) onlyInvalid.push(t.type);
    if (invalid.length === 0) noInvalid.push(t.type);
    const name = `c_${t.typname}`;
    scalars.push({ name, type: t.type, valid, invalid });
    if (t.array !== null) {
      const arrValid = ["{}", "{NULL}"];
      if (valid.length > 0) {
        const parts = valid.slice(0, 3).map((v) => `${lit(v)}::${t.type}`);
        const [{ text }] = await sql.unsafe<{ text: string }[]>(
          `select array[${parts.join(", ")}, null]::text as text`,
        );
        arrValid.push(text);
      }
      const arrInvalid = invalid.slice(0, 1).map((v) => `{${element(v)}}`);
      arrInvalid.push("{1,{2}}");
      arrays.push({
        name: `a_${t.typname}`,
        type: t.array,
        valid: await filterValues(sql, arrValid, t.array, true),
        invalid: await filterValues(sql, arrInvalid, t.array, false),
      });
    }
  }
  log.push(`${scalars.length} types, ${arrays.length} array types`);
  log.push(`input refuses every value tried (invalid rows only): ${onlyInvalid.join(", ") || "none"}`);
  log.push(`every value tried is read (valid rows only): ${noInvalid.join(", ") || "none"}`);
  return { scalars, arrays };
}

/** A CSV field: NULL unquoted and empty; quoted when it must be, and now and then when it need not be. */
function csvField(v: string | null, salt: number): string {
  if (v === null) return "";
  if (v === "" || /[",\n\r]/.test(v) || salt % 5 === 0) return `"${v.replaceAll('"', '""')}"`;
  return v;
}

interface Row {
  id: number;
  text: string;
  line: number;
}

/** Valid rows (values cycled, a NULL now and then) and, between them, rows that break one column each. */
function makeRows(columns: Column[], header: string): { rows: Row[]; csv: string } {
  const records: (string | null)[][] = [];
  const validRow = (i: number) =>
    columns.map((c, j) =>
      c.valid.length === 0 || (i * 7 + j) % 13 === 0 ? null : c.valid[(i + j) % c.valid.length]
    );
  const bad: (string | null)[][] = [];
  for (const [j, c] of columns.entries()) {
    for (const v of c.invalid) {
      const r = validRow(bad.length);
      r[j] = v;
      bad.push(r);
    }
  }
  const validCount = Math.max(60, bad.length * 2);
  for (let i = 0; i < validCount; i++) {
    records.push(validRow(i));
    if (i % 2 === 1 && bad.length > 0) records.push(bad.shift()!);
  }
  records.push(...bad);
  const rows: Row[] = [];
  let line = 2;
  const lines: string[] = [];
  for (const [i, values] of records.entries()) {
    const id = i + 1;
    const text = [String(id), ...values.map((v, j) => csvField(v, i + j))].join(",");
    rows.push({ id, text, line });
    lines.push(text);
    line += text.split("\n").length;
  }
  return { rows, csv: header + lines.join("\n") + "\n" };
}

/**
 * `\copy` of each row alone (its own file, with the header) into `table`, all in one psql process that goes on
 * after errors: the message of each refused row (psql names the script line of the failed command), null when
 * it loaded.
 */
async function copyEachAlone(
  table: string,
  columns: string[],
  header: string,
  rows: Row[],
  dir: string,
): Promise<(string | null)[]> {
  const script: string[] = ["\\set ON_ERROR_STOP off"];
  for (const [i, r] of rows.entries()) {
    const file = `${dir}/row${i}.csv`;
    await Deno.writeTextFile(file, header + r.text + "\n");
    script.push(`\\copy ${table} (${columns.join(", ")}) from '${file}' with (format csv, header true)`);
  }
  await Deno.writeTextFile(`${dir}/alone.psql`, script.join("\n") + "\n");
  const out = await psql(["-f", `${dir}/alone.psql`], {
    env: { PGOPTIONS: "-c client_min_messages=warning" },
  });
  const result: (string | null)[] = rows.map(() => null);
  for (
    const m of new TextDecoder().decode(out.stderr).matchAll(/^psql:[^\n]*?:(\d+): ERROR: {2}([^\n]*)$/gm)
  ) {
    result[Number(m[1]) - 2] = m[2];
  }
  return result;
}

interface Group {
  label: string;
  columns: Column[];
  /** Columns of the table the file leaves out (identity, generated): DDL after the file's columns. */
  extraDdl?: string;
  /** The checksum's select list (default: the whole row). */
  compared?: string;
}

Deno.test({
  name: "all types: every base type of this server, arrays, domains, enums, composites, ranges, extension " +
    "types, identity and generated columns load as \\copy loads them, refused rows with its message",
  ...E2E,
}, async () => {
  const sql = connect();
  const scope = new Scope(sql, "alltypes");
  const log: string[] = [];
  try {
    const [{ version }] = await sql<
      { version: string }[]
    >`select current_setting('server_version') as version`;
    log.push(`PostgreSQL ${version}`);
    // Extensions where Supabase keeps them (left in place: other tests may use them). PostGIS and pgvector only
    // where the server has them.
    for (const ext of ["citext", "hstore", "postgis", "vector"]) {
      const [available] = await sql`select 1 from pg_catalog.pg_available_extensions where name = ${ext}`;
      if (!available) {
        log.push(`${ext}: not available on this server, skipped`);
        continue;
      }
      try {
        await sql.unsafe(`create extension if not exists ${ext} with schema extensions`);
      } catch (e) {
        log.push(`${ext}: could not be created (${(e as Error).message}), skipped`);
      }
    }
    const { scalars, arrays } = await discoverTypes(sql, log);

    // Types of this test: an enum, a composite, domains with CHECKs (over a converter-checked and a server-
    // checked base), and typmods.
    const p = scope.prefix;
    await sql.unsafe(`create type public.${p}_mood as enum ('sad', 'ok', 'happy, really')`);
    await sql.unsafe(`create type public.${p}_pair as (a int, b text)`);
    await sql.unsafe(`create domain public.${p}_posint as int check (value > 0)`);
    await sql.unsafe(`create domain public.${p}_v4 as inet check (family(value) = 4)`);
    await sql.unsafe(`create domain public.${p}_code as varchar(3) check (value ~ '^[A-Z]+$')`);
    scope.defer(() =>
      sql.unsafe(`drop type if exists public.${p}_mood, public.${p}_pair cascade;
        drop domain if exists public.${p}_posint, public.${p}_v4, public.${p}_code cascade`)
    );
    const hasPostgis = scalars.some((c) => c.name === "c_geometry");
    const special: Column[] = [
      { name: "mood", type: `public.${p}_mood`, valid: ["sad", "happy, really"], invalid: ["nope", "Sad"] },
      {
        name: "moods",
        type: `public.${p}_mood[]`,
        valid: ['{ok,"happy, really"}', "{}"],
        invalid: ["{meh}"],
      },
      {
        name: "pair",
        type: `public.${p}_pair`,
        valid: ['(1,"x, y")', "(,)", '(2,"line\nbreak")'],
        invalid: ["(x,y)", "(1,2,3)"],
      },
      {
        name: "pairs",
        type: `public.${p}_pair[]`,
        valid: ['{"(1,a)","(2,\\"b c\\")"}'],
        invalid: ['{"(z,a)"}'],
      },
      { name: "posint", type: `public.${p}_posint`, valid: ["1", "2147483647"], invalid: ["0", "-5", "x"] },
      { name: "posints", type: `public.${p}_posint[]`, valid: ["{1,2}"], invalid: ["{1,0}"] },
      { name: "v4", type: `public.${p}_v4`, valid: ["10.1.2.3"], invalid: ["::1", "300.1.1.1"] },
      { name: "code", type: `public.${p}_code`, valid: ["AB", "XYZ"], invalid: ["abc", "ABCD"] },
      { name: "num52", type: "numeric(5,2)", valid: ["123.45", "-1.005", "0"], invalid: ["1234.5", "x"] },
      { name: "vc3", type: "varchar(3)", valid: ["abc", "ab   ", "é,ü"], invalid: ["abcd"] },
      { name: "ch2", type: "char(2)", valid: ["ab", "a"], invalid: ["abc"] },
      { name: "bit3", type: "bit(3)", valid: ["101"], invalid: ["1010", "10"] },
      { name: "vbit4", type: "varbit(4)", valid: ["1", "1010"], invalid: ["10101"] },
      {
        name: "ts0",
        type: "timestamp(0)",
        valid: ["2024-01-01 10:00:00.6"],
        invalid: ["2024-01-01 10:00:00x"],
      },
      { name: "tstz1", type: "timestamptz(1)", valid: ["2024-01-01 10:00:00.66+01"], invalid: [] },
      { name: "t2", type: "time(2)", valid: ["10:00:00.555"], invalid: [] },
      {
        name: "iv",
        type: "interval day to second(0)",
        valid: ["1 day 10:00:00.7"],
        invalid: ["1 fortnight"],
      },
      { name: "vc3s", type: "varchar(3)[]", valid: ['{ab,"c,d"}'], invalid: ["{abcd}"] },
      { name: "num41s", type: "numeric(4,1)[]", valid: ["{1.25,-3}"], invalid: ["{12345}"] },
      { name: "bit2s", type: "bit(2)[]", valid: ["{10,01}"], invalid: ["{1}"] },
      ...hasPostgis
        ? [
          {
            name: "geom_pt",
            type: "extensions.geometry(Point,4326)",
            valid: ["SRID=4326;POINT(1 2)"],
            invalid: ["SRID=4326;LINESTRING(0 0,1 1)", "POINT(1 2)"],
          },
          {
            name: "geog_pt",
            type: "extensions.geography(Point,4326)",
            valid: ["POINT(1 2)"],
            invalid: ["POINT(1 2 3 4 5)"],
          },
        ]
        : [],
    ];

    const groups: Group[] = [];
    const size = 20;
    for (let i = 0; i < scalars.length; i += size) {
      groups.push({ label: `types${i / size}`, columns: scalars.slice(i, i + size) });
    }
    for (let i = 0; i < arrays.length; i += size) {
      groups.push({ label: `arrays${i / size}`, columns: arrays.slice(i, i + size) });
    }
    groups.push({ label: "special", columns: special });
    // Identity and generated columns, left out of the file: COPY (and \copy given the same column list) fills
    // them. The identities depend on the order rows arrive in (the pipeline's chunks load in parallel), so the
    // comparison leaves them out; that they are all set and distinct is checked below.
    groups.push({
      label: "generated",
      columns: [
        { name: "a", type: "int", valid: ["1", "2", "30"], invalid: ["x"] },
        { name: "t", type: "text", valid: ["x", "y, z"], invalid: [] },
      ],
      extraDdl: `, ident int generated always as identity, ident2 bigint generated by default as identity,
        doubled int generated always as (a * 2) stored`,
      compared: "id, a, t, doubled",
    });

    const dir = await scope.tempDir();
    const jobs: {
      group: Group;
      mode: string;
      table: string;
      reference: string;
      alone: string;
      name: string;
      rows: Row[];
      verdicts: (string | null)[];
      bytes: number;
    }[] = [];
    for (const group of groups) {
      const ddl = `(id int primary key, ${group.columns.map((c) => `${c.name} ${c.type}`).join(", ")}${
        group.extraDdl ?? ""
      })`;
      const [table, keyed, reference, alone] = ["t", "k", "ref", "one"].map((s) =>
        `public.${p}_${group.label}_${s}`
      );
      for (const t of [table, keyed, reference, alone]) {
        await sql.unsafe(`create table ${t} ${ddl}`);
        scope.defer(() => sql.unsafe(`drop table if exists ${t}`));
      }
      // Each file twice: in insert mode (the fast path, refused pieces isolated) and, every key unique, in upsert
      // or skip_duplicates mode (every row through csv_import.write_keyed), which must come out the same.
      const keyedMode = groups.indexOf(group) % 2 === 0 ? "upsert" : "skip_duplicates";
      for (
        const [target, sub, onConflict] of [[table, "", "insert"], [keyed, "-keyed", keyedMode]] as const
      ) {
        await scope.profile({
          pathPattern: `${p}/${group.label}${sub}/%`,
          targetTable: target,
          chunkSizeBytes: 4096,
          toleratedRejectRate: 1,
          hasHeader: true,
          maxAttempts: 2,
          onConflict,
          conflictColumns: onConflict === "insert" ? null : ["id"],
        });
      }
      const names = ["id", ...group.columns.map((c) => c.name)];
      const header = names.join(",") + "\n";
      const { rows, csv } = makeRows(group.columns, header);
      const groupDir = `${dir}/${group.label}`;
      await Deno.mkdir(groupDir);
      const verdicts = await copyEachAlone(alone, names, header, rows, groupDir);
      await Deno.writeTextFile(
        `${groupDir}/good.csv`,
        header + rows.filter((_, i) => verdicts[i] === null).map((r) => r.text).join("\n") + "\n",
      );
      await psqlCopy(reference, `${groupDir}/good.csv`, { columns: names });
      for (const [target, sub, mode] of [[table, "", "insert"], [keyed, "-keyed", keyedMode]]) {
        const name = scope.object(`${group.label}${sub}/data.csv`);
        await upload(name, csv);
        jobs.push({ group, mode, table: target, reference, alone, name, rows, verdicts, bytes: csv.length });
      }
      log.push(
        `${group.label}: ${group.columns.length} columns, ${rows.length} rows, ${
          verdicts.filter((v) => v !== null).length
        } refused by \\copy, ${csv.length} bytes`,
      );
    }
    console.log(log.map((l) => `  ${l}`).join("\n"));

    const failures: string[] = [];
    for (const { group: g, mode, table, reference, alone, name, rows, verdicts, bytes } of jobs) {
      const group = { ...g, label: `${g.label} (${mode})` };
      const job = await waitForJob(sql, name, 300_000);
      if (bytes > 3 * 4096) {
        assert.ok(Number(job.chunk_count) >= 3, `${group.label}: ${job.chunk_count} chunks`);
      }
      const refused = rows.filter((_, i) => verdicts[i] !== null).length;
      if (job.status !== (refused > 0 ? "succeeded_with_rejects" : "succeeded")) {
        failures.push(`${group.label}: job ${job.id} ${job.status}: ${job.error ?? ""}`);
        continue;
      }
      const view = (t: string) => group.compared ? `(select ${group.compared} from ${t})` : t;
      const [mine, ref, one] = await Promise.all(
        [table, reference, alone].map((t) => checksum(sql, view(t))),
      );
      assert.deepEqual(ref, one, `${group.label}: \\copy of the accepted rows = the rows copied alone`);
      if (JSON.stringify(mine) !== JSON.stringify(ref)) {
        const diff = await sql.unsafe<{ side: string; row: string }[]>(
          `(select 'pipeline only' as side, t::text as row from ${
            view(table)
          } t except select 'pipeline only', r::text from ${view(reference)} r)
           union all (select '\\copy only', r::text from ${
            view(reference)
          } r except select '\\copy only', t::text from ${view(table)} t) limit 10`,
        );
        failures.push(
          `${group.label}: stored rows differ: ${diff.map((d) => `${d.side}: ${d.row}`).join(" | ")}`,
        );
      }
      const rejects = await sql<{ line_number: string; reason: string }[]>`
        select line_number, reason from csv_import.rejects where job_id = ${job.id} order by line_number`;
      const expected = new Map(rows.flatMap((r, i) => verdicts[i] !== null ? [[r.line, verdicts[i]!]] : []));
      const got = new Map(rejects.map((r) => [Number(r.line_number), r.reason]));
      for (const [line, reason] of expected) {
        const mine = got.get(line);
        if (mine === undefined) {
          failures.push(`${group.label} line ${line}: \\copy refuses (${reason}), pipeline loaded`);
        } else if (!mine.startsWith(reason)) {
          failures.push(`${group.label} line ${line}: reason "${mine}", \\copy: "${reason}"`);
        }
      }
      for (const [line, reason] of got) {
        if (!expected.has(line)) {
          failures.push(`${group.label} line ${line}: pipeline refused (${reason}), \\copy loads`);
        }
      }
      if (g.label === "generated") {
        const [ids] = await sql.unsafe<{ n: number; distinct1: number; distinct2: number }[]>(
          `select count(*)::int as n, count(distinct ident)::int as distinct1, count(distinct ident2)::int as distinct2
           from ${table}`,
        );
        assert.equal(ids.distinct1, ids.n, "every identity set and distinct");
        assert.equal(ids.distinct2, ids.n, "every identity (by default) set and distinct");
      }
    }
    assert.deepEqual(failures, [], failures.join("\n"));
  } finally {
    await scope.dispose();
    await sql.end();
  }
});
