/**
 * csv-spectrum 2.0.0 (https://github.com/maxogden/csv-spectrum): every CSV parses to the shipped JSON through
 * sniffDialect + the record parser, except where PostgreSQL COPY semantics deliberately differ (stated below).
 */

import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- test-only fixture package, not in the import map
import "npm:csv-spectrum@2.0.0"; // makes Deno fetch the package into its npm cache
import { sniffDialect } from "./dialect.ts";
import { createRecordParser } from "./parser.ts";

// The package's own loader pairs csvs/ and json/ by directory order, which is unsorted on most file systems,
// so the files are read by name from Deno's npm cache instead.
const info = new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).outputSync();
const npmCache: string = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache;
const root = `${npmCache}/registry.npmjs.org/csv-spectrum/2.0.0`;
const names = [...Deno.readDirSync(`${root}/csvs`)].map((e) => e.name.replace(/\.csv$/, "")).sort();

function toObjects(csv: Uint8Array): Record<string, string | null>[] {
  const dialect = sniffDialect(csv, { hasHeader: true });
  const parser = createRecordParser({
    format: dialect,
    maxRecordBytes: 1 << 20,
    startOffset: dialect.dataStart,
    startLine: dialect.linesBeforeData + 1,
  });
  const records = [...parser.push(csv.subarray(dialect.dataStart)), ...parser.finish()];
  for (const r of records) assert.equal(r.issue, null);
  return records.map((r) => Object.fromEntries(dialect.header!.map((h, i) => [h, r.fields[i] ?? null])));
}

Deno.test("csv-spectrum ships its 12 cases", () => {
  assert.equal(names.length, 12);
});

for (const name of names) {
  Deno.test(`csv-spectrum: ${name}`, () => {
    const expected = JSON.parse(Deno.readTextFileSync(`${root}/json/${name}.json`));
    const actual = toObjects(Deno.readFileSync(`${root}/csvs/${name}.csv`));
    if (name === "location_coordinates") {
      // The file has quotes inside unquoted fields: 37°36'37.8"N 121°2'17.9"W. csv-spectrum expects them kept
      // (a lenient parser); PostgreSQL COPY CSV opens a quoted section at each and drops both quote bytes.
      // The fixture is also inconsistent upstream: its JSON is one object, not an array, and its phone number
      // (1234567890) is not the CSV's (2095257564).
      assert.deepEqual(actual, [{
        ...expected,
        "Contact Phone Number": "2095257564",
        "Location Coordinates": expected["Location Coordinates"].replaceAll('"', ""),
      }]);
      return;
    }
    assert.deepEqual(actual, expected);
  });
}
