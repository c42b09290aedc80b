/** Table tests of the rejects CSV's object names (its content: supabase/tests/database/finalize/rejects_csv.test.sql). */
import assert from "node:assert/strict";
import { rejectsObjectName } from "./rejects_file.ts";

Deno.test("rejects file names fit Storage's 1024-byte limit", () => {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  assert.equal(rejectsObjectName("in/a.csv", 7), "in/a.csv.rejects.csv");
  const long = "in/" + "é".repeat(505) + ".csv"; // 1017 bytes: `.rejects.csv` would make it 1029
  assert.equal(rejectsObjectName(long, 7), "in/job-7.rejects.csv");
  const deep = "d".repeat(1010) + "/f.csv"; // even the folder is too long for job-<id>.rejects.csv beside it
  assert.equal(rejectsObjectName(deep, 42), "job-42.rejects.csv");
  for (const name of [long, deep]) assert.ok(bytes(rejectsObjectName(name, 1)) <= 1024);
  assert.equal(rejectsObjectName("in/orders.csv"), "in/orders.csv.rejects.csv");
});
