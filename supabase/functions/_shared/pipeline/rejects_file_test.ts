/** Table tests of the rejects CSV: field quoting (formula-injection safe) and object names. */
import assert from "node:assert/strict";
import { csvField, rejectsObjectName } from "./rejects_file.ts";

Deno.test("rejects CSV fields are quoted and spreadsheet formulas neutralised", () => {
  const table: [string | number | null, string][] = [
    ["plain", '"plain"'],
    ['say "hi"', '"say ""hi"""'],
    ["=cmd()", `"'=cmd()"`],
    ["+1", `"'+1"`],
    ["-1", `"'-1"`],
    ["@SUM(A1)", `"'@SUM(A1)"`],
    ["\tx", `"'\tx"`],
    ["a\nb", '"a\nb"'],
    [42, '"42"'],
    [null, '""'],
  ];
  for (const [value, want] of table) assert.equal(csvField(value), want);
  assert.equal(rejectsObjectName("in/orders.csv"), "in/orders.csv.rejects.csv");
});

Deno.test("rejects file names fit Storage's 1024-byte limit", () => {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  assert.equal(rejectsObjectName("in/a.csv", 7), "in/a.csv.rejects.csv");
  const long = "in/" + "é".repeat(505) + ".csv"; // 1017 bytes: `.rejects.csv` would make it 1029
  assert.equal(rejectsObjectName(long, 7), "in/job-7.rejects.csv");
  const deep = "d".repeat(1010) + "/f.csv"; // even the folder is too long for job-<id>.rejects.csv beside it
  assert.equal(rejectsObjectName(deep, 42), "job-42.rejects.csv");
  for (const name of [long, deep]) assert.ok(bytes(rejectsObjectName(name, 1)) <= 1024);
});
