// Builds the dashboard into src/hearth/web/static (committed). Deterministic: the same sources
// and lockfile give the same bytes, which CI checks with `git diff --exit-code`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = "../src/hearth/web/static";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.tsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outfile: `${out}/app.js`,
  legalComments: "eof",
  charset: "utf8",
  sourcemap: false,
  logLevel: "warning",
});
for (const name of ["index.html", "app.css", "favicon.svg"]) {
  copyFileSync(`static/${name}`, `${out}/${name}`);
}
