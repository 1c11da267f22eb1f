// Validate AsyncAPI documents with the real @asyncapi/parser (the one AsyncAPI's own tools use),
// resolving their $refs to the JSON Schemas beside them. Prints one JSON summary line per document,
// in order; exits 1 when the parser reports any error in any of them (or a warning, with
// --strict), 2 on bad usage.
import { fromFile, Parser } from "@asyncapi/parser";
import { resolve } from "node:path";

const args = process.argv.slice(2);
const strict = args.includes("--strict");
const files = args.filter((a) => !a.startsWith("--"));
if (!files.length) {
  console.error("usage: node validate-asyncapi.mjs [--strict] path/to/asyncapi.json...");
  process.exit(2);
}
const parser = new Parser();
let failed = false;
for (const file of files) {
  const summary = await check(file);
  console.log(JSON.stringify(summary));
  failed ||= !summary.valid || (strict && summary.warnings.length > 0);
}
process.exit(failed ? 1 : 0);

async function check(file) {
  const { document, diagnostics } = await fromFile(parser, resolve(file)).parse();
  // severity: 0 error, 1 warning, 2 information, 3 hint
  const pick = (level) =>
    diagnostics
      .filter((d) => d.severity === level)
      .map((d) => ({ code: d.code, message: d.message, path: d.path.join(".") }));
  const errors = pick(0);
  const warnings = pick(1);
  const summary = { valid: document !== undefined && errors.length === 0, errors, warnings };
  if (document) {
    const ops = document.operations().all();
    summary.asyncapi = document.version();
    summary.channels = document.channels().all().length;
    summary.receive = ops.filter((o) => o.action() === "receive").map((o) => o.id()).sort();
    summary.send = ops.filter((o) => o.action() === "send").map((o) => o.id()).sort();
    summary.with_reply = ops.filter((o) => o.reply() !== undefined).length;
    summary.queues = [...new Set(ops.map((o) => o.bindings().get("nats")?.value()?.queue).filter(Boolean))];
    // what one command's messages resolved to (the JSON Schemas of proto/schemas, by their titles)
    const op = document.operations().get("ipam.subnet.allocate");
    summary.sample = op && {
      request: op.messages().all().map((m) => m.payload()?.title()),
      reply: op.reply()?.messages().all().map((m) => m.payload()?.title()),
    };
  }
  return summary;
}
