// The mesh cells, loaded from dist/ (what users get; `npm run bench` builds
// first). Empty until dist/ exports createMesh.
let lib;
try {
  lib = await import('../../dist/index.js');
} catch (err) {
  console.error(`bench: could not load dist/index.js (${err.message}); run \`npm run build\``);
  lib = {};
}

export const meshCells = typeof lib.createMesh === 'function' ? [] : [];
