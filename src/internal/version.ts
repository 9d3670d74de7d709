/** The package's version (kept equal to package.json's by test/unit/internal/version.test.ts). */
export const VERSION = '0.1.0';
