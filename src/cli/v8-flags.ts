// V8 settings of a zava-mcp process, set before any WebAssembly module is compiled: the SQL guard's parser
// (libpg-query) and, in the embedded backend's worker threads, PGlite, which share the process's flags.
//
// Why a larger WebAssembly tiering budget: V8 runs WebAssembly first with its baseline compiler and recompiles a
// function with its optimizing compiler once it has run "enough" (by default about 1.8 MB of code executed).
// PostgreSQL's parser and executor hold huge functions that reach that budget within the first few statements: a
// server that had answered one call had spent about 1.3 s of CPU optimizing them on background threads, and its exit
// waited a second for that work; every PGlite instance (the writer, each reader, each reader reopened after a write)
// paid again. With 100 times the budget only code that stays hot is optimized. Measured 2026-11-27 on 2 cores
// (start over stdio, one call, exit): 3.2 → 1.9 s of CPU on PostgreSQL, 10–11 → 7.3–8.4 s embedded; heavy queries
// repeated in one process answered as fast (embedded top-20 revenue from the third run on: 221–265 ms against
// 254–268 ms).
import v8 from 'node:v8';

v8.setFlagsFromString('--wasm-tiering-budget=180000000');
