import assert from "node:assert/strict";
import { CompressionError, startCheckpoint } from "./inflate.ts";
import { crc32 } from "./crc32.ts";
import { detectCompression, entryName, locateZipMember, type ZipMember } from "./zip.ts";
import {
  collect,
  csvLikeData,
  equalBytes,
  every,
  randomPieceSizes,
  run,
  withTempDir,
} from "./test_support.ts";

const DATA = csvLikeData(1_500_000, 7);

/** Builds archives with Python's zipfile: `script` gets `data` (DATA's bytes) and `path` (the output). */
async function pythonZip(script: string): Promise<Uint8Array> {
  return await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/data.csv`, DATA);
    const program =
      `import zipfile, sys, io\ndata = open('data.csv','rb').read()\npath = 'out.zip'\n${script}\n`;
    await run(["python3", "-c", program], { cwd: dir });
    return await Deno.readFile(`${dir}/out.zip`);
  });
}

/** Builds an archive with the zip CLI in a folder holding data.csv: `zip <args>`, output out.zip. */
async function cliZip(args: string[], setup?: (dir: string) => Promise<void>): Promise<Uint8Array> {
  return await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/data.csv`, DATA);
    await setup?.(dir);
    await run(["zip", "-q", ...args], { cwd: dir });
    return await Deno.readFile(`${dir}/out.zip`);
  });
}

function locate(archive: Uint8Array): Promise<ZipMember> {
  return locateZipMember((start, end) => Promise.resolve(archive.slice(start, end)), archive.length);
}

/** Locates the member, inflates it with the central directory's CRC and size, resumes from checkpoints. */
async function assertMemberIsData(archive: Uint8Array, method: "deflate" | "stored", name = "data.csv") {
  assert.equal(detectCompression(archive.subarray(0, 4)), "zip");
  const member = await locate(archive);
  assert.equal(member.name, name);
  assert.equal(member.method, method);
  assert.equal(member.size, DATA.length);
  const end = member.dataOffset + member.compressedSize;
  const opts = { end, expected: { crc32: member.crc32, size: member.size } };
  const result = await collect(member.method, startCheckpoint(member.method, member.dataOffset), archive, {
    ...opts,
    checkpointAt: every(400_000),
    sizes: randomPieceSizes(member.dataOffset),
  });
  assert.ok(equalBytes(result.output, DATA));
  assert.deepEqual(result.end, { out: DATA.length, in: end });
  assert.ok(result.checkpoints.length >= 2);
  for (const cp of result.checkpoints) {
    const rest = await collect(member.method, cp, archive, opts);
    assert.ok(equalBytes(rest.output, DATA.subarray(cp.out)));
  }
}

async function assertLocateFails(archive: Uint8Array, ...parts: string[]): Promise<void> {
  const error = await locate(archive).then(() => null, (e) => e);
  assert.ok(error instanceof CompressionError, `expected a CompressionError, got ${error}`);
  for (const part of parts) assert.ok(error.message.includes(part), `"${error.message}" lacks "${part}"`);
}

Deno.test("zip CLI: deflate and stored members", async () => {
  await assertMemberIsData(await cliZip(["out.zip", "data.csv"]), "deflate");
  await assertMemberIsData(await cliZip(["-0", "out.zip", "data.csv"]), "stored");
});

Deno.test("zip CLI streamed from stdin (data descriptor, zero sizes in the local header)", async () => {
  const archive = await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/data.csv`, DATA);
    const child = new Deno.Command("sh", { args: ["-c", "cat data.csv | zip -q -fd out.zip -"], cwd: dir });
    assert.equal((await child.output()).code, 0);
    return await Deno.readFile(`${dir}/out.zip`);
  });
  assert.equal(new DataView(archive.buffer).getUint16(6, true) & 8, 8, "data descriptor flag set");
  await assertMemberIsData(archive, "deflate", "-");
});

Deno.test("Python zipfile: to a non-seekable stream (data descriptor), zip64, stored, deflate", async () => {
  const streamed = await pythonZip(`
class Sink(io.RawIOBase):
    def __init__(self): self.f = open(path, 'wb')
    def writable(self): return True
    def write(self, b): return self.f.write(b)
    def close(self): self.f.close()
sink = Sink()
with zipfile.ZipFile(sink, 'w', zipfile.ZIP_DEFLATED) as z:
    with z.open('data.csv', 'w') as f: f.write(data)
sink.close()`);
  assert.equal(new DataView(streamed.buffer).getUint16(6, true) & 8, 8, "data descriptor flag set");
  await assertMemberIsData(streamed, "deflate");
  const zip64 = await pythonZip(`
with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    with z.open('data.csv', 'w', force_zip64=True) as f: f.write(data)`);
  await assertMemberIsData(zip64, "deflate");
  const stored = await pythonZip(`
with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z: z.writestr('dir/data.csv', data)`);
  await assertMemberIsData(stored, "stored", "dir/data.csv");
});

Deno.test("zip64: end record, locator and zip64 extra fields for sizes and offsets", async () => {
  // Python writes the zip64 end-of-central-directory record and locator when the directory starts past
  // 4 GiB or there are too many entries; a small archive only gets them through zipfile's ZIP64_LIMIT.
  const archive = await pythonZip(`
zipfile.ZIP64_LIMIT = 1000
with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED, allowZip64=True) as z:
    z.writestr('__MACOSX/._padding', bytes(5000))
    z.writestr('data.csv', data, zipfile.ZIP_DEFLATED)`);
  const view = new DataView(archive.buffer);
  let found = false;
  for (let i = archive.length - 22 - 20; i >= 0 && !found; i--) {
    found = view.getUint32(i, true) === 0x06064b50;
  }
  assert.ok(found, "the archive has a zip64 end record");
  let central = archive.length - 4;
  while (view.getUint32(central, true) !== 0x02014b50) central--;
  assert.equal(view.getUint32(central + 20, true), 0xffffffff, "compressed size is in the zip64 extra field");
  assert.equal(view.getUint32(central + 42, true), 0xffffffff, "offset is in the zip64 extra field");
  await assertMemberIsData(archive, "deflate");
});

Deno.test("folders, __MACOSX entries and .DS_Store are ignored", async () => {
  const archive = await pythonZip(`
with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('export/', b'')
    z.writestr('__MACOSX/', b'')
    z.writestr('__MACOSX/export/._data.csv', b'junk')
    z.writestr('export/.DS_Store', b'junk')
    z.writestr('export/data.csv', data)`);
  await assertMemberIsData(archive, "deflate", "export/data.csv");
});

Deno.test("several files, Excel, encrypted, empty, bzip2, LZMA: refused, naming what was found", async () => {
  await assertLocateFails(
    await pythonZip(`
with zipfile.ZipFile(path, 'w') as z:
    z.writestr('a.csv', b'x'); z.writestr('b.csv', b'y'); z.writestr('notes.txt', b'z')`),
    "The ZIP archive holds 3 files (a.csv, b.csv, notes.txt); upload a ZIP with one CSV file",
  );
  await assertLocateFails(
    await pythonZip(`
with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('[Content_Types].xml', b'<Types/>'); z.writestr('_rels/.rels', b'<r/>')
    z.writestr('xl/workbook.xml', b'<workbook/>'); z.writestr('xl/worksheets/sheet1.xml', b'<s/>')`),
    "Excel workbook (xl/workbook.xml)",
    "export the sheet as CSV",
  );
  await assertLocateFails(
    await cliZip(["-P", "secret", "out.zip", "data.csv"]),
    "The ZIP archive is encrypted (data.csv)",
  );
  const empty = await pythonZip(`zipfile.ZipFile(path, 'w').close()`);
  assert.equal(detectCompression(empty), "zip");
  await assertLocateFails(empty, "The ZIP archive is empty");
  await assertLocateFails(
    await pythonZip(`
with zipfile.ZipFile(path, 'w') as z: z.writestr('only/', b'')`),
    "holds no files",
  );
  await assertLocateFails(
    await pythonZip(`
with zipfile.ZipFile(path, 'w', zipfile.ZIP_BZIP2) as z: z.writestr('data.csv', data)`),
    "uses compression method 12 (bzip2) for data.csv; only deflate and stored are supported",
  );
  await assertLocateFails(
    await pythonZip(`
with zipfile.ZipFile(path, 'w', zipfile.ZIP_LZMA) as z: z.writestr('data.csv', data)`),
    "compression method 14 (LZMA)",
  );
});

Deno.test("truncated, multi-disk and non-ZIP objects", async () => {
  const archive = await cliZip(["out.zip", "data.csv"]);
  await assertLocateFails(
    archive.subarray(0, archive.length - 10),
    "end-of-central-directory record is missing",
  );
  await assertLocateFails(archive.subarray(0, 10), "end-of-central-directory record is missing");
  // Cut in the member's data: the directory is gone too.
  await assertLocateFails(archive.subarray(0, 100_000), "truncated");
  const multiDisk = archive.slice();
  const eocd = archive.length - 22;
  assert.equal(new DataView(archive.buffer).getUint32(eocd, true), 0x06054b50);
  new DataView(multiDisk.buffer).setUint16(eocd + 4, 2, true);
  await assertLocateFails(multiDisk, "split across several files");
  assert.equal(detectCompression(new TextEncoder().encode("id,name\n")), null);
  assert.equal(detectCompression(Uint8Array.of(0x1f, 0x8b, 8, 0)), "gzip");
  // The central directory's CRC is what the data is checked against.
  const member = await locate(archive);
  const corrupt = archive.slice();
  corrupt[member.dataOffset + 50_000] ^= 0x10;
  const error = await collect("deflate", startCheckpoint("deflate", member.dataOffset), corrupt, {
    end: member.dataOffset + member.compressedSize,
    expected: { crc32: member.crc32, size: member.size },
  }).then(() => null, (e) => e);
  assert.ok(error instanceof CompressionError && error.offset >= member.dataOffset + 50_000, String(error));
});

Deno.test("names: the UTF-8 flag, an Info-ZIP Unicode Path field, unflagged UTF-8, else code page 437", async () => {
  const utf8 = (text: string) => new TextEncoder().encode(text);
  const noExtra = new Uint8Array(0);
  assert.equal(entryName(utf8("Übersicht.csv"), 0x0800, noExtra), "Übersicht.csv");
  assert.equal(entryName(utf8("naïve.csv"), 0, noExtra), "naïve.csv", "valid UTF-8 without the flag (macOS)");
  // A Windows "Compressed folder": code page 437 bytes, no flag. Python's zipfile reads them the same way.
  const cp437 = Uint8Array.from([0x9a, ...utf8("bersicht.csv")]);
  assert.equal(entryName(cp437, 0, noExtra), "Übersicht.csv");
  const python = new TextDecoder().decode(
    await run(["python3", "-c", "import sys; sys.stdout.write(bytes(range(128, 256)).decode('cp437'))"]),
  );
  for (let i = 0; i < 128; i++) {
    // Each byte between ASCII letters: never valid UTF-8, so read as code page 437.
    const name = entryName(Uint8Array.from([0x61, 0x80 + i, 0x62]), 0, noExtra);
    assert.equal(name, `a${python[i]}b`, `byte 0x${(0x80 + i).toString(16)}`);
  }
  // Info-ZIP's Unicode Path field (0x7075): version 1, CRC-32 of the header's name, the UTF-8 name.
  const header = utf8("na?ve.csv");
  const unicodePath = (crc: number) => {
    const name = utf8("naïve.csv");
    const field = new Uint8Array(9 + name.length);
    const view = new DataView(field.buffer);
    view.setUint16(0, 0x7075, true);
    view.setUint16(2, 5 + name.length, true);
    field[4] = 1;
    view.setUint32(5, crc, true);
    field.set(name, 9);
    return field;
  };
  assert.equal(entryName(header, 0, unicodePath(crc32(0, header))), "naïve.csv");
  assert.equal(
    entryName(header, 0, unicodePath(crc32(0, header) ^ 1)),
    "na?ve.csv",
    "a field made for other bytes",
  );
});

Deno.test("names in messages: the zip CLI's unflagged UTF-8 and a code page 437 archive read as Python reads it", async () => {
  await assertLocateFails(
    await cliZip(["out.zip", "Übersicht.csv", "naïve.csv"], async (dir) => {
      await Deno.writeTextFile(`${dir}/Übersicht.csv`, "a\n");
      await Deno.writeTextFile(`${dir}/naïve.csv`, "b\n");
    }),
    "holds 2 files (Übersicht.csv, naïve.csv)",
  );
  // Python writes non-ASCII names as UTF-8 with the flag; ASCII placeholders patched to code page 437 bytes make
  // the archive a DOS tool would write. zipfile reads it back: the names a message must show.
  const archive = await pythonZip(`
with zipfile.ZipFile(path, 'w') as z:
    z.writestr('Xbersicht.csv', b'x'); z.writestr('Y-Liste.csv', b'y')
raw = open(path, 'rb').read().replace(b'Xbersicht', b'\\x9abersicht').replace(b'Y-Liste', b'\\x84-Liste')
open(path, 'wb').write(raw)`);
  const pythonNames = await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/out.zip`, archive);
    const script = "import zipfile, sys; sys.stdout.write(', '.join(zipfile.ZipFile('out.zip').namelist()))";
    return new TextDecoder().decode(await run(["python3", "-c", script], { cwd: dir }));
  });
  assert.equal(pythonNames, "Übersicht.csv, ä-Liste.csv");
  await assertLocateFails(archive, `holds 2 files (${pythonNames})`);
});
