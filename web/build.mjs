// Builds the dashboard into src/hearth/web/static (committed). Deterministic: the same sources
// and lockfile give the same bytes, which CI checks with `git diff --exit-code`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";

const out = "../src/hearth/web/static";
mkdirSync(out, { recursive: true });
// Chunk names carry a content hash: drop the previous build's, so no stale file stays behind.
for (const name of readdirSync(out)) {
  if (name.endsWith(".js")) rmSync(`${out}/${name}`);
}
await build({
  entryPoints: ["src/main.tsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  // The chat page (with marked and DOMPurify) is a chunk loaded when first opened, so the
  // inbox a person opens from a phone does not parse a Markdown renderer first.
  splitting: true,
  outdir: out,
  entryNames: "app",
  chunkNames: "chunk-[hash]",
  legalComments: "eof",
  charset: "utf8",
  sourcemap: false,
  logLevel: "warning",
});
for (const name of ["index.html", "app.css", "favicon.svg"]) {
  copyFileSync(`static/${name}`, `${out}/${name}`);
}
