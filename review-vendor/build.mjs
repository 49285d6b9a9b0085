// Copy NiiVue's self-contained ES-module build into the Python package.
//
// NiiVue's npm package ships dist/index.js, an ES module with all of its dependencies
// (gl-matrix, nifti-reader-js, fflate, ...) already bundled, so no bundler is needed:
// this script copies it, records its version, licence and checksum, and the review page
// imports it as ./vendor/niivue.js. Run: npm ci && npm run build
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, "node_modules", "@niivue", "niivue");
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const outDir = join(here, "..", "src", "petseg", "review", "static", "vendor");
mkdirSync(outDir, { recursive: true });

const source = join(pkgDir, "dist", "index.js");
const target = join(outDir, "niivue.js");
// Drop the source-map comment: the map is not shipped, and a dangling reference makes
// browsers request a file that does not exist.
const code = readFileSync(source, "utf8").replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
writeFileSync(target, code);
const sha256 = createHash("sha256").update(code).digest("hex");

const notice = `# Vendored NiiVue

\`niivue.js\` is \`dist/index.js\` of the npm package \`${pkg.name}@${pkg.version}\`
(${pkg.repository?.url ?? "https://github.com/niivue/niivue"}), licence ${pkg.license},
copied by \`review-vendor/build.mjs\` (source-map comment removed). It bundles its dependencies
(gl-matrix, nifti-reader-js, fflate and others, MIT-style licences).

sha256: ${sha256}

Rebuild: \`cd review-vendor && npm ci && npm run build\`.
`;
writeFileSync(join(outDir, "README.md"), notice);

// Licence texts of the dependencies that NiiVue's dist bundle contains.
const modules = join(here, "node_modules");
const packageDirs = readdirSync(modules).flatMap((name) =>
  name.startsWith("@")
    ? readdirSync(join(modules, name)).map((sub) => join(modules, name, sub))
    : name.startsWith(".")
      ? []
      : [join(modules, name)],
);
const texts = [];
for (const dir of packageDirs.sort()) {
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const licenceFile = ["LICENSE", "LICENSE.md", "LICENSE.txt"].map((f) => join(dir, f)).find(existsSync);
  const text = licenceFile ? readFileSync(licenceFile, "utf8").trim() : "(no licence file shipped)";
  texts.push(`== ${meta.name}@${meta.version} (${meta.license}) ==\n${text}\n`);
}
writeFileSync(join(outDir, "THIRD_PARTY_LICENSES.txt"), texts.join("\n"));
console.log(`wrote ${target} (${pkg.name}@${pkg.version}, sha256 ${sha256.slice(0, 12)})`);
