/**
 * Fails at import on a Node.js older than undici 8 needs, with a message naming
 * both versions, instead of a TypeError from deep inside undici. The build puts
 * this module first in every published entry point (see tsup.config.ts): an ES
 * module's own code runs only after all its imports, so the check cannot live
 * in src/index.ts itself.
 */
export const MIN_NODE = [22, 19] as const;

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
  throw new Error(
    `inmesh needs Node.js ${MIN_NODE.join('.')} or newer (its HTTP client, undici 8, does); this process runs Node.js ${process.versions.node}`,
  );
}
