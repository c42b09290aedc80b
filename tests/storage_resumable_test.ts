/**
 * The functions' own resumable (TUS) upload client (supabase/functions/_shared/platform/storage_resumable.ts)
 * against the local Storage's TUS endpoint (@tus/server, local-stack/storage/tus.ts):
 * - differential: the same bytes uploaded by it and by tus-js-client (the CLI's client) give identical objects,
 *   equal to the source, byte for byte;
 * - a PATCH cut by the network is resumed from the offset the server reports (HEAD), and only the rest of the part
 *   is sent again;
 * - pieces that do not add up to the announced size fail the upload before its last byte, so no object appears;
 * - a refusal comes back as hosted shapes it (a missing bucket: HTTP 400 with 404 in the body → StorageError).
 */
import assert from "node:assert/strict";
import { uploadResumable as tusJsClientUpload } from "../cli/upload.ts";
import { SECRET_KEY } from "../local-stack/keys.ts";
import { StorageError } from "../supabase/functions/_shared/platform/storage.ts";
import {
  RESUMABLE_PART_BYTES,
  uploadResumable,
} from "../supabase/functions/_shared/platform/storage_resumable.ts";
import { BUCKET, E2E, removeObjects, supabase, SUPABASE_URL, unique } from "./support/stack.ts";

/** ~13.5 MB: two full 6 MB parts and a partial one; text with multibyte characters, quotes and CRLFs. */
function sourceBytes(): Uint8Array<ArrayBuffer> {
  const line = '"7","note","too long","é€ü, ""quoted"" =1"\r\n';
  return new TextEncoder().encode(line.repeat(Math.ceil((2.25 * RESUMABLE_PART_BYTES) / line.length)));
}

async function* inPieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.slice(at, at + size);
}

async function objectBytes(name: string): Promise<Uint8Array<ArrayBuffer> | null> {
  const { data, error } = await supabase.storage.from(BUCKET).download(name);
  return error || !data ? null : new Uint8Array(await data.arrayBuffer());
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

const target = { supabaseUrl: SUPABASE_URL, key: SECRET_KEY };

Deno.test(
  { name: "resumable upload: the same object as tus-js-client's, byte for byte", ...E2E },
  async () => {
    const prefix = unique("tus");
    // `.rejects.csv`: the registration trigger ignores these names, so nothing is imported.
    const ours = `${prefix}/ours.rejects.csv`;
    const theirs = `${prefix}/theirs.rejects.csv`;
    const bytes = sourceBytes();
    const dir = await Deno.makeTempDir();
    try {
      // Pieces of an odd size, so that parts are put together from several pieces and pieces split over parts.
      await uploadResumable(target, {
        bucket: BUCKET,
        name: ours,
        contentType: "text/csv",
        size: bytes.byteLength,
      }, {
        [Symbol.asyncIterator]: () => inPieces(bytes, 1_000_003),
      });
      await Deno.writeFile(`${dir}/source.csv`, bytes);
      await tusJsClientUpload({
        supabaseUrl: SUPABASE_URL,
        key: SECRET_KEY,
        bucket: BUCKET,
        objectName: theirs,
        path: `${dir}/source.csv`,
        size: bytes.byteLength,
        upsert: true,
      });
      const [a, b] = [await objectBytes(ours), await objectBytes(theirs)];
      assert.ok(a && b, "both objects exist");
      assert.equal(a.byteLength, bytes.byteLength);
      assert.equal(await sha256(a), await sha256(bytes), "ours is the source, byte for byte");
      assert.equal(await sha256(b), await sha256(a), "… and the same as tus-js-client's");

      // Overwrites (x-upsert), as a rejects file written again after a retried job is.
      const shorter = bytes.subarray(0, RESUMABLE_PART_BYTES + 11);
      await uploadResumable(target, {
        bucket: BUCKET,
        name: ours,
        contentType: "text/csv",
        size: shorter.byteLength,
      }, {
        [Symbol.asyncIterator]: () => inPieces(shorter, 4096 * 1024),
      });
      assert.equal(
        await sha256((await objectBytes(ours))!),
        await sha256(shorter),
        "an overwrite replaces it",
      );
    } finally {
      await removeObjects([ours, theirs]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  { name: "resumable upload: a PATCH cut by the network resumes from the server's offset", ...E2E },
  async () => {
    const name = `${unique("tus")}/cut.rejects.csv`;
    const bytes = sourceBytes();
    const requests: string[] = [];
    let cut = false;
    // The second PATCH reaches the server with half its body, then the connection fails (as a dropped network
    // does): the server keeps what arrived; the client must learn the offset and send only the rest.
    const cutting: typeof fetch = async (input, init) => {
      const method = init?.method ?? "GET";
      requests.push(method);
      if (method === "PATCH" && !cut && requests.filter((m) => m === "PATCH").length === 2) {
        cut = true;
        const body = init!.body as Uint8Array<ArrayBuffer>;
        const half = body.subarray(0, Math.floor(body.byteLength / 2));
        const headers = new Headers(init!.headers);
        await (await fetch(input, { ...init, headers, body: half })).body?.cancel();
        throw new TypeError("network error: connection reset (injected)");
      }
      return fetch(input, init);
    };
    try {
      await uploadResumable(
        { ...target, fetch: cutting },
        { bucket: BUCKET, name, contentType: "text/csv", size: bytes.byteLength },
        { [Symbol.asyncIterator]: () => inPieces(bytes, 65_536) },
      );
      assert.deepEqual(
        requests,
        ["POST", "PATCH", "PATCH", "HEAD", "PATCH", "PATCH"],
        "one HEAD, then the rest",
      );
      assert.equal(await sha256((await objectBytes(name))!), await sha256(bytes), "the object is exact");
    } finally {
      await removeObjects([name]);
    }
  },
);

Deno.test({
  name: "resumable upload: wrong sizes fail before the object appears; refusals as hosted",
  ...E2E,
}, async () => {
  const prefix = unique("tus");
  const bytes = sourceBytes();
  try {
    for (const [label, size] of [["fewer", bytes.byteLength + 1], ["more", bytes.byteLength - 1]] as const) {
      const name = `${prefix}/${label}.rejects.csv`;
      await assert.rejects(
        uploadResumable(target, { bucket: BUCKET, name, contentType: "text/csv", size }, {
          [Symbol.asyncIterator]: () => inPieces(bytes, 1 << 20),
        }),
        new RegExp(`${bytes.byteLength} bytes given for an object of ${size}`),
      );
      assert.equal(await objectBytes(name), null, `${label} bytes than announced: no object`);
    }
    await assert.rejects(
      uploadResumable(target, { bucket: "no-such-bucket", name: "x.csv", contentType: "text/csv", size: 3 }, {
        [Symbol.asyncIterator]: () => inPieces(new Uint8Array(3), 3),
      }),
      (error) => error instanceof StorageError && error.status === 404,
      "a missing bucket is a permanent refusal with the code from the body",
    );
  } finally {
    await removeObjects([`${prefix}/fewer.rejects.csv`, `${prefix}/more.rejects.csv`]);
  }
});
