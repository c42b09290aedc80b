// Imports a module that does not exist: the worker must fail to boot (503 BOOT_ERROR).
import { missing } from "./does-not-exist.ts";

Deno.serve(() => new Response(String(missing)));
